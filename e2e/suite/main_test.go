// Package suite is edgefd's end-to-end suite: it runs against the cluster `scripts/e2e.sh up`
// starts (upstream kube-apiserver, scheduler, controller-manager, a real kubelet + containerd
// node, paper nodes) with edgefd deployed from manifests/, and checks what users rely on. Each
// test names the promise it checks; each wait polls a condition with a deadline; a failure
// prints the objects involved. Run it with `bash scripts/e2e.sh` (or `up`, then `test`).
package suite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// Where the cluster is; scripts/e2e.sh sets these.
var env struct {
	kubeconfig string // admin kubeconfig (build/e2e/kubeconfig)
	repo       string // the repository root
	node       string // the real node's name
	sharedDT   string // ../shared/devicetrees (may be absent)
	nodeRoot   string // the CPU fixture the DaemonSets mount
	bin        string // the upstream programs (kubectl, ...)
	logs       string // build/e2e/logs
}

var (
	restConfig *rest.Config
	client     kubernetes.Interface
)

const (
	edgefdNamespace = "edgefd-system"
	edgefdImage     = "edgefd/edgefd:0.1.0"
	ownedAnnotation = "edgefd.io/owned-labels"
	paperNodeLabel  = "e2e.edgefd.io/paper-node"
	// testNamespaceLabel names the group a test namespace was made for (testNamespace).
	testNamespaceLabel = "e2e.edgefd.io/test-namespace"
	labellerMetrics    = "http://127.0.0.1:9402/metrics"
	pluginMetrics      = "http://127.0.0.1:9479/metrics"
)

func TestMain(m *testing.M) {
	env.kubeconfig = os.Getenv("E2E_KUBECONFIG")
	env.repo = os.Getenv("E2E_REPO")
	env.node = os.Getenv("E2E_NODE_NAME")
	env.sharedDT = os.Getenv("E2E_SHARED_DT")
	env.nodeRoot = os.Getenv("E2E_NODE_ROOT")
	env.bin = os.Getenv("E2E_BIN")
	env.logs = os.Getenv("E2E_LOGS")
	if env.kubeconfig != "" {
		var err error
		restConfig, err = clientcmd.BuildConfigFromFlags("", env.kubeconfig)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		restConfig.QPS, restConfig.Burst = 100, 200
		client = kubernetes.NewForConfigOrDie(restConfig)
	}
	code := m.Run()
	writeFigures()
	os.Exit(code)
}

// requireCluster skips a test run outside scripts/e2e.sh.
func requireCluster(t *testing.T) {
	t.Helper()
	if client == nil {
		t.Skip("no cluster: run `bash scripts/e2e.sh` (E2E_KUBECONFIG is not set)")
	}
}

// requirePaperNodes skips a test when ../shared/devicetrees is absent (no paper nodes).
func requirePaperNodes(t *testing.T) {
	t.Helper()
	requireCluster(t)
	if _, err := os.Stat(env.sharedDT); err != nil {
		t.Skipf("no paper nodes: %s is absent (../shared is not checked out)", env.sharedDT)
	}
}

// ---------------------------------------------------------------------------------------------
// Waiting and explaining failures.

// poll waits for cond with a deadline; on timeout it fails the test with what it waited for
// and whatever explain prints about the objects involved.
func poll(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error),
	explain ...func() string) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true,
		func(ctx context.Context) (bool, error) {
			ok, err := cond(ctx)
			if err != nil {
				lastErr = err // transient API errors are retried until the deadline
				return false, nil
			}
			return ok, nil
		})
	if err != nil {
		reason := fmt.Sprintf("timed out after %v waiting for %s", timeout, what)
		if lastErr != nil {
			reason += fmt.Sprintf(" (last error: %v)", lastErr)
		}
		var b strings.Builder
		b.WriteString(reason)
		for _, e := range explain {
			b.WriteString("\n")
			b.WriteString(e())
		}
		if len(explain) > 0 {
			// CI shows the tail of a long log: the reason again, after what explains it.
			fmt.Fprintf(&b, "\n(%s: %s)", t.Name(), reason)
		}
		t.Fatal(b.String())
	}
}

// waitUnschedulable waits until the scheduler marks pod ns/name unschedulable, failing if it
// is bound instead, and returns the scheduler's message; describePod and explain say why on
// a timeout.
func waitUnschedulable(t *testing.T, ns, name string, explain ...func() string) string {
	t.Helper()
	var message string
	poll(t, "the scheduler to report pod "+name+" unschedulable", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName != "" {
			return false, fmt.Errorf("bound to %s", p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == "Unschedulable" {
				message = c.Message
				return true, nil
			}
		}
		return false, nil
	}, append([]func() string{describePod(ns, name)}, explain...)...)
	return message
}

// describeNode prints a Node as `kubectl describe` would, the parts a test looks at.
func describeNode(name string) func() string {
	return func() string {
		node, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return fmt.Sprintf("node %s: %v", name, err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "--- node %s\nlabels:\n", name)
		for _, k := range sortedKeys(node.Labels) {
			fmt.Fprintf(&b, "  %s=%s\n", k, node.Labels[k])
		}
		fmt.Fprintf(&b, "annotation %s: %s\n", ownedAnnotation, node.Annotations[ownedAnnotation])
		fmt.Fprintf(&b, "unschedulable: %v taints: %v\n", node.Spec.Unschedulable, node.Spec.Taints)
		fmt.Fprintf(&b, "capacity: %v\nallocatable: %v\n", node.Status.Capacity, node.Status.Allocatable)
		for _, c := range node.Status.Conditions {
			fmt.Fprintf(&b, "condition %s=%s (%s: %s)\n", c.Type, c.Status, c.Reason, c.Message)
		}
		return b.String()
	}
}

// describePod prints a Pod's status, its events and the tail of its containers' logs.
func describePod(namespace, name string) func() string {
	return func() string {
		ctx := context.Background()
		pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Sprintf("pod %s/%s: %v", namespace, name, err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "--- pod %s/%s on node %q: phase %s\n", namespace, name, pod.Spec.NodeName,
			pod.Status.Phase)
		for _, c := range pod.Status.Conditions {
			fmt.Fprintf(&b, "condition %s=%s (%s: %s)\n", c.Type, c.Status, c.Reason, c.Message)
		}
		for _, cs := range pod.Status.ContainerStatuses {
			fmt.Fprintf(&b, "container %s: ready=%v restarts=%d state=%+v\n", cs.Name, cs.Ready,
				cs.RestartCount, cs.State)
		}
		events, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + name})
		if err == nil {
			for _, e := range events.Items {
				fmt.Fprintf(&b, "event %s %s: %s\n", e.Type, e.Reason, e.Message)
			}
		}
		for _, c := range pod.Spec.Containers {
			logs, err := podLogs(namespace, name, c.Name)
			if err == nil {
				fmt.Fprintf(&b, "logs of %s (tail):\n%s\n", c.Name, tail(logs, 30))
			}
		}
		return b.String()
	}
}

// describeLog prints the tail of one of scripts/e2e.sh's process logs (kubelet, containerd...).
func describeLog(name string) func() string {
	return func() string {
		data, err := os.ReadFile(filepath.Join(env.logs, name+".log"))
		if err != nil {
			return fmt.Sprintf("log %s: %v", name, err)
		}
		return fmt.Sprintf("--- %s.log (tail)\n%s", name, tail(string(data), 40))
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---------------------------------------------------------------------------------------------
// Objects.

func getNode(ctx context.Context, name string) (*corev1.Node, error) {
	return client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

// edgefdLabels returns the labels under the prefixes edgefd owns.
func edgefdLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if strings.HasPrefix(k, "edgefd.io/") || strings.HasPrefix(k, "beta.devicetree.org/") {
			out[k] = v
		}
	}
	return out
}

func diffLabels(want, got map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(want) {
		if g, ok := got[k]; !ok {
			fmt.Fprintf(&b, "  missing %s=%s\n", k, want[k])
		} else if g != want[k] {
			fmt.Fprintf(&b, "  %s: want %q, got %q\n", k, want[k], g)
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "  unexpected %s=%s\n", k, got[k])
		}
	}
	return b.String()
}

// testNamespace creates a namespace for one test and deletes it (with its pods) afterwards.
func testNamespace(t *testing.T, name string) string {
	t.Helper()
	// Each call gets a namespace of its own name (the group's name and a suffix from the
	// clock): CoreDNS caches a Service's address for 30 s, so a stage of a rerun (`go test
	// -count=2`, or `scripts/e2e.sh test` again on the same cluster) resolving a Service name of
	// a reused namespace would dial the address of the run before's Service for that long.
	// Namespaces of the same group left by an interrupted run carry its label and are
	// released first: their pods may still hold the node's cores and devices.
	left, err := client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{
		LabelSelector: testNamespaceLabel + "=" + name})
	if err != nil {
		t.Fatalf("listing namespaces of earlier runs of %s: %v", name, err)
	}
	for _, ns := range left.Items {
		releaseNamespace(t, ns.Name)
	}
	unique := fmt.Sprintf("%s-%x", name, time.Now().UnixMilli()&0xffffff)
	_, err = client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: unique, Labels: map[string]string{testNamespaceLabel: name}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", unique, err)
	}
	poll(t, "the default service account in "+unique, 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(unique).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	t.Cleanup(func() { releaseNamespace(t, unique) })
	return unique
}

// releaseNamespace deletes a test's namespace and waits until nothing in it holds a node's
// resources any more: its pods are gone, each real-node pod confirmed stopped by the kubelet
// (deleted with a grace of 1 s, the kubelet deletes the object once its containers are
// stopped and its devices and cores released), and the ResourceClaims generated for them are
// gone (deallocated). The Namespace object itself goes later: the namespace controller waits a
// fixed 5 s (namespaceDeletionGracePeriod) before it even starts, which waiting for added to
// every group with a namespace and protected nothing.
func releaseNamespace(t *testing.T, name string) {
	ctx := context.Background()
	// A terminating namespace takes no new pods (nor a Deployment's replacements).
	_ = client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true,
		func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			for _, p := range pods.Items {
				// A pod of a paper node (no kubelet confirms), an unbound one, or one whose
				// kubelet has not confirmed within 20 s (stopped by a fault test) goes at once.
				grace := int64(0)
				if p.Spec.NodeName == env.node && time.Since(start) < 20*time.Second {
					if p.DeletionTimestamp != nil {
						continue
					}
					grace = 1
				}
				_ = client.CoreV1().Pods(name).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
			}
			if len(pods.Items) > 0 {
				return false, nil
			}
			claims, err := client.ResourceV1().ResourceClaims(name).List(ctx, metav1.ListOptions{})
			return err == nil && len(claims.Items) == 0, nil
		})
	if err != nil {
		t.Errorf("namespace %s: pods or ResourceClaims left 90 s after its deletion", name)
	}
	// The device plugin withdraws (reports Unhealthy) the cores that prepared DRA claims hold
	// and gives them back once the DRA driver has unprepared them, which can come after the
	// claims are gone; the Node's allocatable, posted every 10 s, may not show either. A next
	// test's pod admitted meanwhile is refused ("no healthy devices": TestFaults' survivor was,
	// once this cleanup stopped waiting 5 s for the namespace object). No plugin: nothing held.
	var held float64
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			n, err := metric(pluginMetrics, "edgefd_deviceplugin_dra_held_devices")
			held = n
			return err != nil || n == 0, nil
		})
	if err != nil {
		t.Errorf("namespace %s: the device plugin still withdraws %v devices for DRA claims 30 s after its pods and claims went", name, held)
	}
}

// shellPod returns a pod running `sh -c script` in the edgefd image (which has a shell).
func shellPod(name, script string, restart corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{
				Name: "main", Image: edgefdImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", script},
			}},
		},
	}
}

// onRealNode keeps a pod off the paper nodes (which never start pods).
func onRealNode(pod *corev1.Pod) *corev1.Pod {
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: paperNodeLabel, Operator: corev1.NodeSelectorOpDoesNotExist}}}}}}}
	return pod
}

func createPod(t *testing.T, namespace string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	created, err := client.CoreV1().Pods(namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", namespace, pod.Name, err)
	}
	return created
}

func deletePodNow(namespace, name string) {
	_ = client.CoreV1().Pods(namespace).Delete(context.Background(), name,
		metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
}

func waitPodPhase(t *testing.T, namespace, name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(t, fmt.Sprintf("pod %s/%s to be %s", namespace, name, phase), timeout,
		func(ctx context.Context) (bool, error) {
			p, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			pod = p
			if p.Status.Phase == corev1.PodFailed && phase != corev1.PodFailed {
				return false, fmt.Errorf("pod failed")
			}
			return p.Status.Phase == phase, nil
		}, describePod(namespace, name))
	return pod
}

// logLineTime returns the time the container wrote its first log line containing text ("" for
// the first line at all), as the container runtime stamped it (nanoseconds, this machine's
// clock): the precise start of a process that logs as it starts.
func logLineTime(namespace, name, text string) (time.Time, error) {
	data, err := client.CoreV1().Pods(namespace).GetLogs(name, &corev1.PodLogOptions{Timestamps: true}).
		DoRaw(context.Background())
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		stamp, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(rest, text) {
			continue
		}
		return time.Parse(time.RFC3339Nano, stamp)
	}
	return time.Time{}, fmt.Errorf("pod %s/%s logged no line with %q", namespace, name, text)
}

func podLogs(namespace, name, container string) (string, error) {
	data, err := client.CoreV1().Pods(namespace).GetLogs(name, &corev1.PodLogOptions{Container: container}).
		DoRaw(context.Background())
	return string(data), err
}

// reapplyOnFailure puts a kustomization back after the test if the test failed after deleting
// part of it, so one failure does not break the tests after it.
func reapplyOnFailure(t *testing.T, kustomization string) {
	t.Cleanup(func() {
		if t.Failed() {
			_ = exec.Command(filepath.Join(env.bin, "kubectl"), "--kubeconfig", env.kubeconfig, "apply", "-k",
				filepath.Join(env.repo, kustomization)).Run()
		}
	})
}

// ---------------------------------------------------------------------------------------------
// This machine.

// run runs a program on this machine and returns its stdout; a failure fails the test.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// kubectl runs the cluster's kubectl with the admin kubeconfig.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, filepath.Join(env.bin, "kubectl"), append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
}

// metric returns the sum of the samples of a Prometheus metric at url (0 when absent); with
// labels, only of the samples whose label set contains that text (e.g. `result="ok"`).
func metric(url, name string, labels ...string) (float64, error) {
	httpClient := &http.Client{Timeout: 2 * time.Second}
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	total := 0.0
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		if rest != "" && rest[0] != ' ' && rest[0] != '{' {
			continue // a longer metric name
		}
		matches := true
		for _, l := range labels {
			matches = matches && strings.Contains(rest, l)
		}
		if !matches {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %v", url, line, err)
		}
		total += v
	}
	return total, scanner.Err()
}

// ---------------------------------------------------------------------------------------------
// Figures: durations measured on the real cluster, written to build/e2e/figures.json.

var figures = struct {
	sync.Mutex
	values map[string]any
}{values: map[string]any{}}

func recordFigure(name string, value any) {
	figures.Lock()
	defer figures.Unlock()
	figures.values[name] = value
}

func writeFigures() {
	figures.Lock()
	defer figures.Unlock()
	if len(figures.values) == 0 || env.logs == "" {
		return
	}
	data, _ := json.MarshalIndent(figures.values, "", "  ")
	path := filepath.Join(filepath.Dir(env.logs), "figures.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err == nil {
		fmt.Printf("figures (%s):\n%s\n", path, data)
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}
