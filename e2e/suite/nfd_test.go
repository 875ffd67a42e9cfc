package suite

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The NFD group: edgefd-labeller --output nodefeature against the real nfd-master that
// scripts/e2e.sh runs (node-feature-discovery built from the module proxy, its CRDs from the
// same module version).
const (
	nfdNode      = "e2e-nfd"
	nfdFeature   = nfdNode + "-edgefd"
	nfdRuleLabel = "e2e.edgefd.io/nfd-hotplug"
	nfdVeth      = "edgefd-e2e-n0" // matched by the e2e-hotplug rule (INTERFACE edgefd-e2e*)
	nfdVethPeer  = "edgefd-e2e-n1"
)

var (
	nodeFeatures     = schema.GroupVersionResource{Group: "nfd.k8s-sigs.io", Version: "v1alpha1", Resource: "nodefeatures"}
	nodeFeatureRules = schema.GroupVersionResource{Group: "nfd.k8s-sigs.io", Version: "v1alpha1", Resource: "nodefeaturerules"}
)

// startNodeFeatureLabeller runs edgefd-labeller --output nodefeature as a host process for
// node `node`, with the labeller's service account (a token bound to that Node) and the e2e
// rules; udev is this machine's, the CPU tree the DaemonSets' fixture.
func startNodeFeatureLabeller(t *testing.T, node string) {
	t.Helper()
	token := strings.TrimSpace(kubectl(t, "-n", edgefdNamespace, "create", "token", "edgefd-labeller",
		"--duration", "1h", "--bound-object-kind", "Node", "--bound-object-name", node))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	server := restConfig.Host
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, certificate-authority-data: %q}}]
users: [{name: labeller, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: labeller}}]
current-context: e2e
`, server, base64.StdEncoding.EncodeToString(restConfig.TLSClientConfig.CAData), token)), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(env.logs, "labeller-nodefeature.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(env.repo, "build", "labeller", "edgefd-labeller"),
		"--output", "nodefeature", "--kubeconfig", kubeconfig, "--node-name", node,
		"--root", env.nodeRoot, "--udev", "--config", filepath.Join(env.repo, "e2e", "deploy", "rules", "rules.yaml"),
		"--resync", "10", "--metrics-addr", "none")
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+edgefdNamespace)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logFile.Close()
	})
}

func TestNodeFeatureDiscovery(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(restConfig)
	_ = exec.Command("ip", "link", "del", nfdVeth).Run() // left over from an interrupted run
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", nfdVeth).Run() })

	// A Node with no kubelet (like the paper nodes, whose label keeps the DaemonSets off it):
	// only nfd-master labels it, from the NodeFeature the labeller publishes for it.
	_ = client.CoreV1().Nodes().Delete(ctx, nfdNode, metav1.DeleteOptions{})
	poll(t, "node "+nfdNode+" of an earlier run to be gone", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := getNode(ctx, nfdNode)
		return apierrors.IsNotFound(err), nil
	})
	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: nfdNode, Labels: map[string]string{paperNodeLabel: "true"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Nodes().Delete(context.Background(), nfdNode, metav1.DeleteOptions{})
		_ = dyn.Resource(nodeFeatures).Namespace(edgefdNamespace).Delete(context.Background(), nfdFeature,
			metav1.DeleteOptions{})
	})
	// What manifests/components/nfd-nodefeature grants the labeller, beside its ClusterRole.
	kubectl(t, "apply", "-f", filepath.Join(env.repo, "manifests", "components", "nfd-nodefeature", "rbac.yaml"))
	startNodeFeatureLabeller(t, nfdNode)

	feature := func(ctx context.Context) (*unstructured.Unstructured, error) {
		return dyn.Resource(nodeFeatures).Namespace(edgefdNamespace).Get(ctx, nfdFeature, metav1.GetOptions{})
	}
	explain := func() string {
		var b strings.Builder
		if f, err := feature(context.Background()); err == nil {
			spec, _ := json.MarshalIndent(f.Object["spec"], "", "  ")
			fmt.Fprintf(&b, "NodeFeature %s/%s spec:\n%s\n", edgefdNamespace, nfdFeature, spec)
		}
		b.WriteString(describeNode(nfdNode)())
		b.WriteString("\n" + describeLog("labeller-nodefeature")())
		b.WriteString("\n" + describeLog("nfd-master")())
		return b.String()
	}
	hotplugInstances := func(f *unstructured.Unstructured) int {
		elements, _, _ := unstructured.NestedSlice(f.Object, "spec", "features", "instances", "edgefd.accelerator", "elements")
		n := 0
		for _, e := range elements {
			rule, _, _ := unstructured.NestedString(e.(map[string]any), "attributes", "rule")
			if rule == "e2e-hotplug" {
				n++
			}
		}
		return n
	}
	hasTaint := func(n *corev1.Node) bool {
		for _, taint := range n.Spec.Taints {
			if taint.Key == nfdRuleLabel && taint.Effect == corev1.TaintEffectNoSchedule {
				return true
			}
		}
		return false
	}

	t.Run("the node carries edgefd's labels through nfd-master, from the NodeFeature the labeller publishes", func(t *testing.T) {
		var want map[string]string
		poll(t, "NodeFeature "+nfdFeature+" with edgefd's labels and raw features", time.Minute, func(ctx context.Context) (bool, error) {
			f, err := feature(ctx)
			if err != nil {
				return false, err
			}
			if f.GetLabels()["nfd.node.kubernetes.io/node-name"] != nfdNode {
				return false, fmt.Errorf("node-name label %q", f.GetLabels()["nfd.node.kubernetes.io/node-name"])
			}
			want, _, _ = unstructured.NestedStringMap(f.Object, "spec", "labels")
			cpu, _, _ := unstructured.NestedSlice(f.Object, "spec", "features", "instances", "edgefd.cpu", "elements")
			return want["edgefd.io/cpu.heterogeneous"] == "true" && len(cpu) == 2, nil
		}, explain)
		poll(t, "node "+nfdNode+" to carry the NodeFeature's labels", time.Minute, func(ctx context.Context) (bool, error) {
			n, err := getNode(ctx, nfdNode)
			if err != nil {
				return false, err
			}
			return reflect.DeepEqual(edgefdLabels(n.Labels), want), nil
		}, explain)
		n, err := getNode(ctx, nfdNode)
		if err != nil {
			t.Fatal(err)
		}
		// nfd-master's doing, not edgefd's: NFD's ownership annotation, not edgefd's.
		if _, ok := n.Annotations[ownedAnnotation]; ok {
			t.Errorf("node %s has %s: edgefd patched the Node itself", nfdNode, ownedAnnotation)
		}
		if !strings.Contains(n.Annotations["nfd.node.kubernetes.io/feature-labels"], "edgefd.io/cpu.heterogeneous") {
			t.Errorf("nfd-master's feature-labels annotation lacks edgefd's labels: %q",
				n.Annotations["nfd.node.kubernetes.io/feature-labels"])
		}
	})

	t.Run("a NodeFeatureRule matching edgefd.accelerator adds a label and a taint; unplugging the device removes both, also when nfd-master was down meanwhile", func(t *testing.T) {
		rule := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "nfd.k8s-sigs.io/v1alpha1",
			"kind":       "NodeFeatureRule",
			"metadata":   map[string]any{"name": "e2e-edgefd-hotplug"},
			"spec": map[string]any{"rules": []any{map[string]any{
				"name":   "e2e hotplug accelerator present",
				"labels": map[string]any{nfdRuleLabel: "true"},
				"taints": []any{map[string]any{"key": nfdRuleLabel, "value": "true", "effect": "NoSchedule"}},
				"matchFeatures": []any{map[string]any{
					"feature": "edgefd.accelerator",
					"matchExpressions": map[string]any{
						"rule":    map[string]any{"op": "In", "value": []any{"e2e-hotplug"}},
						"healthy": map[string]any{"op": "IsTrue"},
					},
				}},
			}}},
		}}
		_ = dyn.Resource(nodeFeatureRules).Delete(ctx, "e2e-edgefd-hotplug", metav1.DeleteOptions{})
		if _, err := dyn.Resource(nodeFeatureRules).Create(ctx, rule, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = dyn.Resource(nodeFeatureRules).Delete(context.Background(), "e2e-edgefd-hotplug", metav1.DeleteOptions{})
		})
		n, err := getNode(ctx, nfdNode)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := n.Labels[nfdRuleLabel]; ok || hasTaint(n) {
			t.Fatalf("node %s has the rule's label or taint before the device is plugged in\n%s", nfdNode, explain())
		}

		run(t, "ip", "link", "add", nfdVeth, "type", "veth", "peer", "name", nfdVethPeer)
		poll(t, "the rule's label and taint on "+nfdNode+" after plugging the device", time.Minute, func(ctx context.Context) (bool, error) {
			n, err := getNode(ctx, nfdNode)
			if err != nil {
				return false, err
			}
			return n.Labels[nfdRuleLabel] == "true" && n.Labels["edgefd.io/accel.e2e-hotplug"] == "true" && hasTaint(n), nil
		}, explain)

		// nfd-master down: the labeller still keeps the NodeFeature current.
		program(t, "stop", "nfd-master")
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				program(t, "start", "nfd-master")
			}
		})
		run(t, "ip", "link", "del", nfdVeth)
		poll(t, "the NodeFeature to lose the unplugged device while nfd-master is down", time.Minute, func(ctx context.Context) (bool, error) {
			f, err := feature(ctx)
			if err != nil {
				return false, err
			}
			labels, _, _ := unstructured.NestedStringMap(f.Object, "spec", "labels")
			_, labelled := labels["edgefd.io/accel.e2e-hotplug"]
			return hotplugInstances(f) == 0 && !labelled, nil
		}, explain)
		if n, err := getNode(ctx, nfdNode); err == nil && n.Labels[nfdRuleLabel] != "true" {
			t.Errorf("the rule's label went while nfd-master was down: who removed it?\n%s", explain())
		}

		program(t, "start", "nfd-master")
		restarted = true
		poll(t, "the rule's label and taint to be gone from "+nfdNode, time.Minute, func(ctx context.Context) (bool, error) {
			n, err := getNode(ctx, nfdNode)
			if err != nil {
				return false, err
			}
			_, label := n.Labels[nfdRuleLabel]
			_, accel := n.Labels["edgefd.io/accel.e2e-hotplug"]
			return !label && !accel && !hasTaint(n), nil
		}, explain)
	})
}
