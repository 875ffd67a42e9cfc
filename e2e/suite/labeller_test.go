package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

const labellerSelector = "app.kubernetes.io/name=edgefd-labeller"

// dryRunLabels runs the host's edgefd-labeller over the inputs the DaemonSet pod reads: the
// same CPU fixture, this machine's udev (the pod mounts /run/udev and sees the host's /sys),
// the same rules file.
func dryRunLabels(t *testing.T, args ...string) map[string]string {
	t.Helper()
	out := run(t, filepath.Join(env.repo, "build", "labeller", "edgefd-labeller"),
		append([]string{"--dry-run", "--output", "json", "--log-level", "error"}, args...)...)
	var parsed struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(out), &parsed); err != nil {
		t.Fatalf("dry run output is not JSON: %v\n%s", err, out)
	}
	return parsed.Labels
}

func realNodeDryRun(t *testing.T) map[string]string {
	return dryRunLabels(t, "--root", env.nodeRoot, "--udev",
		"--config", filepath.Join(env.repo, "e2e", "deploy", "rules", "rules.yaml"))
}

// waitNodeLabels waits until the node's edgefd labels equal want.
func waitNodeLabels(t *testing.T, node string, want map[string]string, timeout time.Duration) {
	t.Helper()
	var got map[string]string
	poll(t, fmt.Sprintf("node %s's edgefd labels to equal the dry run", node), timeout,
		func(ctx context.Context) (bool, error) {
			n, err := getNode(ctx, node)
			if err != nil {
				return false, err
			}
			got = edgefdLabels(n.Labels)
			return diffLabels(want, got) == "", nil
		}, func() string { return "difference (want = dry run):\n" + diffLabels(want, got) }, describeNode(node))
}

func labellerPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := client.CoreV1().Pods(edgefdNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: labellerSelector, FieldSelector: "spec.nodeName=" + env.node})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no labeller pod on %s", env.node)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitLabellerReady(t *testing.T, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(t, "the labeller pod on "+env.node+" to be Running and Ready", timeout,
		func(ctx context.Context) (bool, error) {
			p, err := labellerPod(ctx)
			if err != nil {
				return false, err
			}
			pod = p
			return p.Status.Phase == corev1.PodRunning && podReady(p), nil
		}, func() string {
			if pod == nil {
				return "no pod"
			}
			return describePod(pod.Namespace, pod.Name)()
		})
	return pod
}

func patchNode(t *testing.T, node, patch string) {
	t.Helper()
	if _, err := client.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching node %s with %s: %v", node, patch, err)
	}
}

func TestLabeller(t *testing.T) {
	requireCluster(t)

	t.Run("the labeller DaemonSet pod runs on the real node", func(t *testing.T) {
		pod := waitLabellerReady(t, 2*time.Minute)
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Image == "" || !strings.Contains(cs.Image, "edgefd/edgefd:0.1.0") {
				t.Errorf("container %s runs image %q, want the edgefd image from scripts/image.sh", cs.Name, cs.Image)
			}
		}
	})

	t.Run("the Node's labels equal the dry run for the same inputs", func(t *testing.T) {
		want := realNodeDryRun(t)
		for _, name := range []string{"edgefd.io/cpu.heterogeneous", "edgefd.io/cpu.big.cores",
			"edgefd.io/accel.e2e-tun", "edgefd.io/kernel.version"} {
			if _, ok := want[name]; !ok {
				t.Fatalf("the dry run has no %s: the fixture or rules did not apply\n%v", name, want)
			}
		}
		// The e2e accelerator's driver version, as the fixture's module file prints it.
		if v := want["edgefd.io/accel.e2e-tun.driver-version"]; v != "v2.1" {
			t.Fatalf("edgefd.io/accel.e2e-tun.driver-version = %q in the dry run, want v2.1\n%v", v, want)
		}
		waitNodeLabels(t, env.node, want, time.Minute)
	})

	t.Run("the owned-labels annotation lists exactly the labels edgefd set", func(t *testing.T) {
		want := realNodeDryRun(t)
		node, err := getNode(context.Background(), env.node)
		if err != nil {
			t.Fatal(err)
		}
		owned := strings.Split(node.Annotations[ownedAnnotation], ",")
		sort.Strings(owned)
		if got, wantNames := strings.Join(owned, ","), strings.Join(sortedKeys(want), ","); got != wantNames {
			t.Fatalf("%s = %q\nwant %q\n%s", ownedAnnotation, got, wantNames, describeNode(env.node)())
		}
	})

	t.Run("a label an admin sets survives the labeller's reconciles", func(t *testing.T) {
		// One foreign label, and one under edgefd.io/ that edgefd did not set (not owned).
		patchNode(t, env.node, `{"metadata":{"labels":{"example.com/rack":"r7","edgefd.io/site-note":"kept"}}}`)
		t.Cleanup(func() {
			patchNode(t, env.node, `{"metadata":{"labels":{"example.com/rack":null,"edgefd.io/site-note":null}}}`)
		})
		// Two reconciles after the admin's change that each patch the Node: a device plugged in
		// and pulled out (no waiting for resyncs, and a patch is where a label could be lost).
		_ = exec.Command("ip", "link", "del", vethName).Run()
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", vethName).Run() })
		for _, plugged := range []bool{true, false} {
			if plugged {
				plugVeth(t)
			} else {
				unplugVeth(t)
			}
			poll(t, fmt.Sprintf("%s present=%v after the admin's patch", hotplugLabel, plugged), time.Minute,
				func(ctx context.Context) (bool, error) {
					n, err := getNode(ctx, env.node)
					if err != nil {
						return false, err
					}
					_, present := n.Labels[hotplugLabel]
					return present == plugged, nil
				}, describeNode(env.node))
		}
		node, err := getNode(context.Background(), env.node)
		if err != nil {
			t.Fatal(err)
		}
		if node.Labels["example.com/rack"] != "r7" || node.Labels["edgefd.io/site-note"] != "kept" {
			t.Fatalf("the admin's labels were changed\n%s", describeNode(env.node)())
		}
		if strings.Contains(node.Annotations[ownedAnnotation], "site-note") {
			t.Fatalf("edgefd claimed the admin's label\n%s", describeNode(env.node)())
		}
	})

	t.Run("an edgefd label an admin removes comes back at the next resync", func(t *testing.T) {
		node, err := getNode(context.Background(), env.node)
		if err != nil {
			t.Fatal(err)
		}
		const name = "edgefd.io/cpu.big.cores"
		value, ok := node.Labels[name]
		if !ok {
			t.Fatalf("node has no %s\n%s", name, describeNode(env.node)())
		}
		patchNode(t, env.node, fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, name))
		removed := time.Now()
		poll(t, name+" to come back", 45*time.Second, func(ctx context.Context) (bool, error) {
			n, err := getNode(ctx, env.node)
			return err == nil && n.Labels[name] == value, err
		}, describeNode(env.node), describeLog("kubelet"))
		t.Logf("%s back after %v (--resync=3)", name, time.Since(removed).Round(time.Millisecond))
	})

	t.Run("the labeller's service account can get and patch nodes and nothing else", func(t *testing.T) {
		ctx := context.Background()
		token, err := client.CoreV1().ServiceAccounts(edgefdNamespace).CreateToken(ctx, "edgefd-labeller",
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token for edgefd-labeller: %v", err)
		}
		saConfig := rest.AnonymousClientConfig(restConfig)
		saConfig.BearerToken = token.Status.Token
		sa := kubernetes.NewForConfigOrDie(saConfig)
		cases := []struct {
			verb, group, resource, subresource, namespace string
			allowed                                       bool
		}{
			{"get", "", "nodes", "", "", true},
			{"patch", "", "nodes", "", "", true},
			{"list", "", "nodes", "", "", false},
			{"watch", "", "nodes", "", "", false},
			{"update", "", "nodes", "", "", false},
			{"create", "", "nodes", "", "", false},
			{"delete", "", "nodes", "", "", false},
			{"patch", "", "nodes", "status", "", false},
			{"get", "", "pods", "", edgefdNamespace, false},
			{"create", "", "pods", "", edgefdNamespace, false},
			{"get", "", "secrets", "", edgefdNamespace, false},
			{"list", "", "secrets", "", "", false},
			{"get", "", "configmaps", "", edgefdNamespace, false},
			{"patch", "apps", "daemonsets", "", edgefdNamespace, false},
			{"create", "", "serviceaccounts", "token", edgefdNamespace, false},
			{"update", "coordination.k8s.io", "leases", "", "kube-node-lease", false},
			{"*", "*", "*", "", "", false},
		}
		for _, c := range cases {
			review, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
				&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
					ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: c.verb, Group: c.group,
						Resource: c.resource, Subresource: c.subresource, Namespace: c.namespace}}},
				metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SelfSubjectAccessReview as edgefd-labeller: %v", err)
			}
			what := strings.Trim(fmt.Sprintf("%s %s/%s/%s in %q", c.verb, c.group, c.resource, c.subresource,
				c.namespace), " ")
			if review.Status.Allowed != c.allowed {
				t.Errorf("edgefd-labeller may %s: %v, want %v (%s)", what, review.Status.Allowed, c.allowed,
					review.Status.Reason)
			}
		}
		// And for real, with its own token: get works, list is forbidden.
		if _, err := sa.CoreV1().Nodes().Get(ctx, env.node, metav1.GetOptions{}); err != nil {
			t.Errorf("GET node as edgefd-labeller: %v", err)
		}
		if _, err := sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("LIST nodes as edgefd-labeller: got %v, want Forbidden", err)
		}
	})

	t.Run("a labeller pod started from the manifests labels its Node", func(t *testing.T) {
		want := realNodeDryRun(t)
		// Remove the DaemonSet and every edgefd label, then apply the overlay again and time
		// pod start -> labels on the Node.
		reapplyOnFailure(t, "e2e/deploy/labeller")
		kubectl(t, "-n", edgefdNamespace, "delete", "daemonset", "edgefd-labeller", "--wait=true")
		poll(t, "the labeller pod to be gone", time.Minute, func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(edgefdNamespace).List(ctx, metav1.ListOptions{LabelSelector: labellerSelector})
			return err == nil && len(pods.Items) == 0, err
		})
		strip := map[string]any{}
		for k := range want {
			strip[k] = nil
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": strip,
			"annotations": map[string]any{ownedAnnotation: nil}}})
		patchNode(t, env.node, string(patch))
		applied := time.Now()
		kubectl(t, "apply", "-k", filepath.Join(env.repo, "e2e", "deploy", "labeller"))
		var pod *corev1.Pod
		poll(t, "the new labeller pod's container to run", 2*time.Minute, func(ctx context.Context) (bool, error) {
			p, err := labellerPod(ctx)
			if err != nil {
				return false, nil
			}
			pod = p
			return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil, nil
		})
		var labelled time.Time
		poll(t, "the Node's labels from the new pod", time.Minute, func(ctx context.Context) (bool, error) {
			n, err := getNode(ctx, env.node)
			if err != nil {
				return false, err
			}
			if diffLabels(want, edgefdLabels(n.Labels)) == "" {
				labelled = time.Now()
				return true, nil
			}
			return false, nil
		}, describeNode(env.node))
		// The process's start: its first log line, as the container runtime stamped it.
		started, err := logLineTime(pod.Namespace, pod.Name, "")
		if err != nil {
			t.Fatal(err)
		}
		recordFigure("labeller_process_start_to_labels_ms", ms(labelled.Sub(started)))
		recordFigure("labeller_apply_to_labels_ms", ms(labelled.Sub(applied)))
		t.Logf("kubectl apply -> labels on the Node: %v; labeller process start (first log line) -> labels: %v",
			labelled.Sub(applied).Round(time.Millisecond), labelled.Sub(started).Round(time.Millisecond))
		waitLabellerReady(t, time.Minute)
	})
}
