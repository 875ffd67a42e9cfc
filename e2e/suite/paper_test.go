package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func paperNodes(t *testing.T) []corev1.Node {
	t.Helper()
	nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: paperNodeLabel})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) == 0 {
		t.Fatalf("no paper nodes (label %s) although %s exists", paperNodeLabel, env.sharedDT)
	}
	return nodes.Items
}

// cordonRealNode keeps new pods off the real node for the rest of the test, so the paper
// nodes are the only candidates (and nothing of the placed pipelines really runs).
func cordonRealNode(t *testing.T) {
	t.Helper()
	patchNode(t, env.node, `{"spec":{"unschedulable":true}}`)
	t.Cleanup(func() { patchNode(t, env.node, `{"spec":{"unschedulable":null}}`) })
}

// checkPlacement waits until every pod of the namespace is bound, then checks each against
// its node: the nodeSelector matches the node's labels and the node's allocatable covers what
// the pods bound there request. It returns pod name -> node name.
func checkPlacement(t *testing.T, ns string, want int) map[string]string {
	t.Helper()
	var pods []corev1.Pod
	poll(t, fmt.Sprintf("%d pods in %s to be bound", want, ns), 2*time.Minute, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods = list.Items
		if len(pods) != want {
			return false, nil
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				return false, nil
			}
		}
		return true, nil
	}, func() string {
		var b strings.Builder
		for _, p := range pods {
			b.WriteString(describePod(ns, p.Name)())
		}
		return b.String()
	})
	placed := map[string]string{}
	used := map[string]corev1.ResourceList{}
	for _, p := range pods {
		node, err := getNode(context.Background(), p.Spec.NodeName)
		if err != nil {
			t.Fatal(err)
		}
		if !labels.SelectorFromSet(p.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
			t.Errorf("pod %s on %s, whose labels do not match its nodeSelector %v\n%s", p.Name, node.Name,
				p.Spec.NodeSelector, describeNode(node.Name)())
		}
		if used[node.Name] == nil {
			used[node.Name] = corev1.ResourceList{}
		}
		for name, q := range p.Spec.Containers[0].Resources.Limits {
			if strings.HasPrefix(string(name), "edgefd.io/") {
				sum := used[node.Name][name]
				sum.Add(q)
				used[node.Name][name] = sum
			}
		}
		placed[p.Labels["app.kubernetes.io/name"]] = node.Name
	}
	for nodeName, list := range used {
		node, _ := getNode(context.Background(), nodeName)
		for name, q := range list {
			if alloc := node.Status.Allocatable[name]; q.Cmp(alloc) > 0 {
				t.Errorf("node %s has %s of %s bound, allocatable %s", nodeName, q.String(), name, alloc.String())
			}
		}
	}
	return placed
}

func applyPipeline(t *testing.T, ns, partOf string) {
	t.Helper()
	kubectl(t, "apply", "-n", ns, "-k", filepath.Join(env.repo, "manifests", "pipeline"),
		"-l", "app.kubernetes.io/part-of="+partOf)
}

func TestPaperNodes(t *testing.T) {
	requirePaperNodes(t)

	t.Run("paper nodes carry the labels of edgefd-labeller --once --dtb for their boards", func(t *testing.T) {
		for _, node := range paperNodes(t) {
			dtb := node.Annotations["edgefd.io/e2e-dtb"]
			want := dryRunLabels(t, "--dtb", dtb)
			if d := diffLabels(want, edgefdLabels(node.Labels)); d != "" {
				t.Errorf("node %s (%s): labels differ from the dry run:\n%s", node.Name, dtb, d)
			}
			if node.Annotations[ownedAnnotation] == "" {
				t.Errorf("node %s has no %s annotation", node.Name, ownedAnnotation)
			}
		}
	})

	t.Run("the conv pipeline's stages land on the big.LITTLE board, one big core each", func(t *testing.T) {
		ns := testNamespace(t, "e2e-paper-conv")
		cordonRealNode(t)
		applyPipeline(t, ns, "conv-pipeline")
		placed := checkPlacement(t, ns, 6)
		for i := 0; i < 4; i++ {
			if got := placed[fmt.Sprintf("conv-stage-%d", i)]; got != "paper-rock-5b" {
				t.Errorf("conv-stage-%d on %q, want paper-rock-5b (the only big.LITTLE paper board)", i, got)
			}
		}
	})

	t.Run("the tiny-YOLO stages land on the arm64 big.LITTLE board; a third does not fit", func(t *testing.T) {
		ns := testNamespace(t, "e2e-paper-yolo")
		cordonRealNode(t)
		applyPipeline(t, ns, "yolo-pipeline")
		placed := checkPlacement(t, ns, 4)
		for i := 0; i < 2; i++ {
			if got := placed[fmt.Sprintf("yolo-stage-%d", i)]; got != "paper-rock-5b" {
				t.Errorf("yolo-stage-%d on %q, want paper-rock-5b", i, got)
			}
		}
		// Both stages hold 2 of rock-5b's 4 big cores: one more replica cannot fit anywhere.
		kubectl(t, "-n", ns, "scale", "deployment/yolo-stage-0", "--replicas=2")
		poll(t, "the extra replica to be unschedulable for want of big cores", time.Minute,
			func(ctx context.Context) (bool, error) {
				list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
					LabelSelector: "app.kubernetes.io/name=yolo-stage-0"})
				if err != nil {
					return false, err
				}
				for _, p := range list.Items {
					for _, c := range p.Status.Conditions {
						if c.Type == corev1.PodScheduled && c.Reason == "Unschedulable" &&
							strings.Contains(c.Message, "Insufficient edgefd.io/big-cpu") {
							return true, nil
						}
					}
				}
				return false, nil
			})
	})

	t.Run("a pod requesting a board's accelerator lands on that board", func(t *testing.T) {
		ns := testNamespace(t, "e2e-paper-accel")
		cordonRealNode(t)
		// Accelerator resources (not core classes) and the paper boards that have them.
		holders := map[string][]string{}
		for _, node := range paperNodes(t) {
			for name, q := range node.Status.Allocatable {
				res := string(name)
				if strings.HasPrefix(res, "edgefd.io/") && !strings.HasSuffix(res, "-cpu") && q.Value() > 0 {
					holders[res] = append(holders[res], node.Name)
				}
			}
		}
		checked := 0
		for res, nodes := range holders {
			if len(nodes) != 1 {
				continue // on several boards: any of them is right
			}
			node := struct{ Name string }{nodes[0]}
			{
				podName := "wants-" + strings.TrimPrefix(res, "edgefd.io/")
				pod := withLimits(shellPod(podName, "exec sleep 3600", corev1.RestartPolicyNever),
					map[string]string{res: "1"})
				createPod(t, ns, pod)
				var bound string
				poll(t, podName+" to be bound", time.Minute, func(ctx context.Context) (bool, error) {
					p, err := client.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
					bound = p.Spec.NodeName
					return err == nil && bound != "", err
				}, describePod(ns, podName))
				if bound != node.Name {
					t.Errorf("pod requesting %s bound to %s, want %s (the only board with it)", res, bound, node.Name)
				}
				checked++
			}
		}
		if checked == 0 {
			t.Fatal("no paper board advertises an accelerator resource (the Jetson Nano's GPU was expected)")
		}
	})
}

// TestPaperBoardsWithOneKindOfCore: a Raspberry Pi and a Jetson, whose cores are all of one
// kind, advertise them as big cores and take tiny-YOLO stages, one per board.
func TestPaperBoardsWithOneKindOfCore(t *testing.T) {
	requirePaperNodes(t)

	t.Run("a Raspberry Pi and a Jetson advertise every core as edgefd.io/big-cpu", func(t *testing.T) {
		for _, name := range []string{"paper-rpi4b", "paper-jetson-nano"} {
			node, err := getNode(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			cores := node.Labels["edgefd.io/cpu.cores"]
			big := node.Status.Allocatable["edgefd.io/big-cpu"]
			if node.Labels["edgefd.io/cpu.heterogeneous"] != "false" || big.String() != cores {
				t.Errorf("node %s: heterogeneous=%q, %s cores, allocatable edgefd.io/big-cpu %s; want "+
					"every core of the homogeneous board as a big core\n%s", name,
					node.Labels["edgefd.io/cpu.heterogeneous"], cores, big.String(), describeNode(name)())
			}
		}
	})

	t.Run("edgefd-plan --from-cluster plans tiny-YOLO over the paper boards from the API server", func(t *testing.T) {
		bin := filepath.Join(env.repo, "build", "runtime", "edgefd-plan")
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s is not built", bin)
		}
		cordonRealNode(t)
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "--model", "yolo-tiny", "--from-cluster", "--kubeconfig", env.kubeconfig,
			"--link-mbps", "100", "--json", "--out", t.TempDir())
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("edgefd-plan --from-cluster: %v\n%s", err, stderr.String())
		}
		var plan struct {
			PredictedFps float64 `json:"predicted_fps"`
			Stages       []struct {
				Node string `json:"node"`
				Cpus []int  `json:"cpus"`
			} `json:"stages"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &plan); err != nil || plan.PredictedFps <= 0 || len(plan.Stages) == 0 {
			t.Fatalf("edgefd-plan printed no plan (%v):\n%s\n%s", err, stdout.String(), stderr.String())
		}
		paper := map[string]bool{}
		for _, n := range paperNodes(t) {
			paper[n.Name] = true
		}
		for _, s := range plan.Stages {
			if !paper[s.Node] || len(s.Cpus) == 0 {
				t.Errorf("a stage on %q with cores %v; want a paper board's cores (the real node is cordoned)\n%s",
					s.Node, s.Cpus, stdout.String())
			}
		}
		if want := "skipped " + env.node + " (unschedulable)"; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	})

	t.Run("manifests/yolo-tiny-boards puts one tiny-YOLO stage on the Pi and one on the Jetson", func(t *testing.T) {
		ns := testNamespace(t, "e2e-paper-boards")
		cordonRealNode(t)
		// The big.LITTLE board could take a stage too: cordoned, the boards with one kind of
		// core are the only candidates.
		patchNode(t, "paper-rock-5b", `{"spec":{"unschedulable":true}}`)
		t.Cleanup(func() { patchNode(t, "paper-rock-5b", `{"spec":{"unschedulable":null}}`) })
		kubectl(t, "apply", "-n", ns, "-k", filepath.Join(env.repo, "manifests", "yolo-tiny-boards"))
		placed := checkPlacement(t, ns, 4)
		got := map[string]bool{placed["yolo-stage-0"]: true, placed["yolo-stage-1"]: true}
		if !got["paper-rpi4b"] || !got["paper-jetson-nano"] {
			t.Errorf("tiny-YOLO stages on %q and %q, want one on paper-rpi4b and one on paper-jetson-nano",
				placed["yolo-stage-0"], placed["yolo-stage-1"])
		}
	})
}
