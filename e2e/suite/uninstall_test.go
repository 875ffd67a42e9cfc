package suite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// edgefd installed with Helm (manifests/helm/edgefd, helm from scripts/build-helm.sh): the
// chart's labeller and DRA driver replace the kustomize ones, `helm upgrade` with new rules
// relabels the node without restarting a pod (the rules reload), and `helm uninstall` leaves
// no edgefd label, annotation, ResourceSlice, DeviceClass or CDI spec behind (its pre-delete
// hook runs `edgefd-labeller --prune --all-nodes --stop-daemonset=edgefd-dra`: the DRA
// driver, stopped first, removes its CDI specs). Last in the suite (the file's name sorts last): the
// uninstall prunes every Node, the paper nodes' labels too. The kustomize deployment is put
// back afterwards, and the paper nodes labelled again, for a suite run again on the same
// cluster (`scripts/e2e.sh test`).

// The chart's values for this node: the e2e rules (a real device node of this machine), the
// DaemonSets kept off the paper nodes (no kubelet runs their pods).
const helmValues = `
devicePlugin:
  enabled: false
nri:
  enabled: false
labeller:
  affinity: &real
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions:
              - {key: e2e.edgefd.io/paper-node, operator: DoesNotExist}
dra:
  enabled: true
  affinity: *real
rules:
  - name: helm-tun
    match:
      - subsystem: misc
        devnode: /dev/net/tun
    devnodes: ["/dev/net/tun"]
`

func helmBin() string {
	if p := os.Getenv("E2E_HELM"); p != "" {
		return p
	}
	return filepath.Join(env.bin, "helm")
}

// helm runs helm with the admin kubeconfig; a failure fails the test.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, helmBin(), append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
}

// edgefdPods returns the chart's pods of one DaemonSet on the real node: name -> (uid, restarts).
func edgefdPods(ctx context.Context, app string) (map[string]string, error) {
	pods, err := client.CoreV1().Pods(edgefdNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/name=" + app, FieldSelector: "spec.nodeName=" + env.node})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		restarts := int32(0)
		for _, s := range p.Status.ContainerStatuses {
			restarts += s.RestartCount
		}
		out[p.Name] = fmt.Sprintf("uid %s, %d restarts", p.UID, restarts)
	}
	return out, nil
}

func nodeHasLabel(name string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		node, err := getNode(ctx, env.node)
		if err != nil {
			return false, err
		}
		_, ok := node.Labels[name]
		return ok, nil
	}
}

func TestHelmInstallUpgradeRulesAndUninstallLeavesNothing(t *testing.T) {
	requireCluster(t)
	if _, err := os.Stat(helmBin()); err != nil {
		t.Skipf("no helm at %s: scripts/e2e.sh builds it (scripts/build-helm.sh)", helmBin())
	}
	chart := filepath.Join(env.repo, "manifests/helm/edgefd")
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(helmValues), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	// The kustomize labeller and DRA driver make way (the namespace, the device plugin and
	// edgefd-nri stay); their Node labels stay too, and the chart's labeller takes them over.
	kubectl(t, "-n", edgefdNamespace, "delete", "--ignore-not-found", "--wait",
		"daemonset/edgefd-labeller", "daemonset/edgefd-dra", "serviceaccount/edgefd-labeller",
		"serviceaccount/edgefd-dra", "clusterrole/edgefd-labeller", "clusterrolebinding/edgefd-labeller",
		"clusterrole/edgefd-dra", "clusterrolebinding/edgefd-dra",
		"validatingadmissionpolicy/edgefd-labeller-own-node",
		"validatingadmissionpolicybinding/edgefd-labeller-own-node",
		"validatingadmissionpolicy/edgefd-dra-own-node", "validatingadmissionpolicybinding/edgefd-dra-own-node")
	classes, err := client.ResourceV1().DeviceClasses().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range classes.Items {
		if strings.HasPrefix(c.Name, "edgefd.io-") {
			kubectl(t, "delete", "--ignore-not-found", "deviceclass/"+c.Name)
		}
	}
	t.Cleanup(func() {
		_ = exec.Command(helmBin(), "--kubeconfig", env.kubeconfig, "uninstall", "edgefd", "-n",
			edgefdNamespace, "--wait").Run()
		for _, k := range []string{"e2e/deploy/labeller", "e2e/deploy/dra"} {
			_ = exec.Command(filepath.Join(env.bin, "kubectl"), "--kubeconfig", env.kubeconfig, "apply", "-k",
				filepath.Join(env.repo, k)).Run()
		}
		relabelPaperNodes(t)
	})
	helm(t, "install", "edgefd", chart, "-n", edgefdNamespace, "-f", values, "--wait", "--timeout", "3m")
	poll(t, "the chart's labeller to label the node from the chart's rules", 60*time.Second,
		nodeHasLabel("edgefd.io/accel.helm-tun"), describeNode(env.node))
	recordFigure("helm_install_to_labels_s", time.Since(t0).Seconds())

	ctx := context.Background()
	before := map[string]map[string]string{}
	for _, app := range []string{"edgefd-labeller", "edgefd-dra"} {
		pods, err := edgefdPods(ctx, app)
		if err != nil || len(pods) != 1 {
			t.Fatalf("%s pods on %s: %v %v", app, env.node, pods, err)
		}
		before[app] = pods
	}

	// New rules: the same device under another name. The kubelet writes the ConfigMap volume at
	// its next sync of each pod (up to a minute, its sync period); an annotation makes it sync
	// now. The pods are not restarted: the binaries reload the file.
	t1 := time.Now()
	helm(t, "upgrade", "edgefd", chart, "-n", edgefdNamespace, "-f", values, "--set", "rules[0].name=helm-tun-b",
		"--wait", "--timeout", "3m")
	for _, pods := range before {
		for pod := range pods {
			kubectl(t, "-n", edgefdNamespace, "annotate", "--overwrite", "pod", pod,
				"e2e.edgefd.io/sync="+time.Now().Format("150405.000"))
		}
	}
	poll(t, "the labels to follow the upgraded rules", 90*time.Second, func(ctx context.Context) (bool, error) {
		node, err := getNode(ctx, env.node)
		if err != nil {
			return false, err
		}
		_, renamed := node.Labels["edgefd.io/accel.helm-tun-b"]
		_, old := node.Labels["edgefd.io/accel.helm-tun"]
		return renamed && !old, nil
	}, describeNode(env.node))
	recordFigure("helm_upgrade_rules_to_labels_s", time.Since(t1).Seconds())
	poll(t, "the DRA driver's ResourceSlice to carry the renamed rule", 60*time.Second,
		func(ctx context.Context) (bool, error) {
			slices, err := client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
				FieldSelector: "spec.nodeName=" + env.node + ",spec.driver=edgefd.io"})
			if err != nil {
				return false, err
			}
			for _, s := range slices.Items {
				for _, d := range s.Spec.Devices {
					if a, ok := d.Attributes["model"]; ok && a.StringValue != nil && *a.StringValue == "helm-tun-b" {
						return true, nil
					}
				}
			}
			return false, nil
		})
	for app, pods := range before {
		after, err := edgefdPods(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		for name, was := range pods {
			if after[name] != was {
				t.Errorf("%s pod %s: before the upgrade %s, after %q: the rules upgrade restarted it", app, name,
					was, after[name])
			}
		}
	}

	// The DRA driver keeps its common CDI spec while it runs.
	if _, err := os.Stat(filepath.Join(cdiDir, "edgefd.io-device.json")); err != nil {
		t.Errorf("the chart's DRA driver wrote no common CDI spec: %v", err)
	}

	// Uninstall: the hook stops the DRA driver and prunes what edgefd set; helm deletes the rest.
	t2 := time.Now()
	helm(t, "uninstall", "edgefd", "-n", edgefdNamespace, "--wait", "--timeout", "3m")
	recordFigure("helm_uninstall_s", time.Since(t2).Seconds())
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if left := edgefdLabels(n.Labels); len(left) != 0 {
			t.Errorf("node %s keeps edgefd labels after helm uninstall: %v", n.Name, left)
		}
		if v, ok := n.Annotations[ownedAnnotation]; ok {
			t.Errorf("node %s keeps %s=%q after helm uninstall", n.Name, ownedAnnotation, v)
		}
	}
	classes, err = client.ResourceV1().DeviceClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range classes.Items {
		if strings.HasPrefix(c.Name, "edgefd.io-") {
			t.Errorf("DeviceClass %s left after helm uninstall", c.Name)
		}
	}
	// The hook stopped the DRA driver first (its DaemonSet deleted in the foreground); seeing
	// its DaemonSet go, the driver removed its CDI specs: no pod holds an edgefd claim now.
	if left, err := filepath.Glob(filepath.Join(cdiDir, "edgefd.io-*.json")); err != nil || len(left) != 0 {
		t.Errorf("CDI specs of edgefd left in %s after helm uninstall: %v %v", cdiDir, left, err)
	}
	// The kubelet wipes a DRA driver's slices once its plugin has been gone a while.
	poll(t, "no edgefd.io ResourceSlice of this node left", 90*time.Second, func(ctx context.Context) (bool, error) {
		slices, err := client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
			FieldSelector: "spec.nodeName=" + env.node + ",spec.driver=edgefd.io"})
		if err != nil {
			return false, err
		}
		return len(slices.Items) == 0, nil
	})
}

// relabelPaperNodes labels each paper node again as `scripts/e2e.sh up` did: `edgefd-labeller
// --once --dtb` of its board, as the labeller's service account bound to that Node. The
// kubeconfigs start_paper_nodes wrote beside the logs give the server and CA; their tokens
// died with the service account the kustomize deployment had before this test (the chart's
// own replaced it), so each gets a fresh one.
func relabelPaperNodes(t *testing.T) {
	if _, err := os.Stat(env.sharedDT); err != nil {
		return // no paper nodes
	}
	nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: paperNodeLabel})
	if err != nil {
		t.Errorf("listing the paper nodes to label them again: %v", err)
		return
	}
	dir, err := os.MkdirTemp("", "edgefd-e2e-relabel")
	if err != nil {
		t.Error(err)
		return
	}
	defer os.RemoveAll(dir)
	token := regexp.MustCompile(`token: [^\s}]+`)
	for _, node := range nodes.Items {
		board := strings.TrimPrefix(node.Name, "paper-")
		written, err := os.ReadFile(filepath.Join(filepath.Dir(env.logs), "labeller-paper-"+board+".kubeconfig"))
		if err != nil || !token.Match(written) {
			t.Errorf("paper node %s: no kubeconfig with a token from scripts/e2e.sh up: %v", node.Name, err)
			continue
		}
		kubeconfig := filepath.Join(dir, board+".kubeconfig")
		fresh := token.ReplaceAllLiteral(written, []byte("token: "+labellerToken(t, node.Name)))
		if err := os.WriteFile(kubeconfig, fresh, 0o600); err != nil {
			t.Error(err)
			continue
		}
		// The role and binding were applied a moment ago: the API server may take a moment
		// to authorise with them.
		var out []byte
		poll(t, "paper node "+node.Name+" labelled again", 30*time.Second, func(context.Context) (bool, error) {
			out, err = exec.Command(filepath.Join(env.repo, "build", "labeller", "edgefd-labeller"), "--once",
				"--dtb", filepath.Join(env.sharedDT, board+".dtb"), "--kubeconfig", kubeconfig,
				"--node-name", node.Name, "--log-level", "warn").CombinedOutput()
			return err == nil, nil
		}, func() string { return fmt.Sprintf("edgefd-labeller --once: %v\n%s", err, out) })
	}
}
