package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// edgefd as a DRA driver (issue 13) on the real node: the edgefd-dra DaemonSet of
// e2e/deploy/dra (--mode dra) beside the device plugin, the real scheduler allocating, the real
// kubelet preparing through edgefd's kubelet plugin, containerd injecting edgefd's CDI specs.

const (
	draDriver      = "edgefd.io"
	draSelector    = "app.kubernetes.io/name=edgefd-dra"
	draMetrics     = "http://127.0.0.1:9480/metrics"
	draVeth        = "edgefd-dra0" // matched by e2e/deploy/dra/rules.yaml (rule e2e-dra-net)
	draVethPeer    = "edgefd-dra1"
	draNetDevice   = "e2e-dra-net-sys-devices-virtual-net-edgefd-dra0"
	unpluggedTaint = "edgefd.io/unplugged"
	cdiDir         = "/var/run/cdi"
	draCheckpoint  = "/var/lib/kubelet/plugins/edgefd.io/checkpoint.json"
	// The issue asks for an unplugged device to leave its slice within 1 s; the suite allows
	// this much (a loaded 2-core machine), and reports the measured medians.
	sliceDeadline = 5 * time.Second
)

func draConfigs() []string {
	return []string{"--config", filepath.Join(env.repo, "e2e", "deploy", "rules", "rules.yaml"),
		"--config", filepath.Join(env.repo, "e2e", "deploy", "dra", "rules.yaml")}
}

// draDryRun runs the host's edgefd-deviceplugin --mode dra over the inputs the DaemonSet pod
// reads (the CPU fixture, this machine's udev, the same rules).
// The e2e accelerator (rule e2e-tun, /dev/net/tun) in the node's pool.
const e2eTunDevice = "e2e-tun-sys-devices-virtual-misc-tun"

func draDryRun(t *testing.T, args ...string) string {
	t.Helper()
	all := append([]string{"--mode", "dra", "--root", env.nodeRoot, "--udev", "--log-level", "error"}, draConfigs()...)
	return run(t, filepath.Join(env.repo, "build", "deviceplugin", "edgefd-deviceplugin"), append(all, args...)...)
}

// nodeDevices returns the devices of edgefd.io's ResourceSlices for the real node, by name.
func nodeDevices(ctx context.Context) (map[string]resourcev1.Device, []resourcev1.ResourceSlice, error) {
	slices, err := client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
		FieldSelector: "spec.nodeName=" + env.node + ",spec.driver=" + draDriver})
	if err != nil {
		return nil, nil, err
	}
	out := map[string]resourcev1.Device{}
	for _, s := range slices.Items {
		for _, d := range s.Spec.Devices {
			out[d.Name] = d
		}
	}
	return out, slices.Items, nil
}

func describeSlices() string {
	devices, slices, err := nodeDevices(context.Background())
	if err != nil {
		return "ResourceSlices: " + err.Error()
	}
	var b strings.Builder
	for _, s := range slices {
		fmt.Fprintf(&b, "--- slice %s pool %s generation %d\n", s.Name, s.Spec.Pool.Name, s.Spec.Pool.Generation)
	}
	for _, name := range sortedDeviceNames(devices) {
		d := devices[name]
		attrs, _ := json.Marshal(d.Attributes)
		fmt.Fprintf(&b, "device %s taints=%v %s\n", name, d.Taints, attrs)
	}
	return b.String()
}

func sortedDeviceNames(m map[string]resourcev1.Device) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func describeDraPlugin() string {
	pods, err := client.CoreV1().Pods(edgefdNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: draSelector})
	if err != nil || len(pods.Items) == 0 {
		return fmt.Sprintf("no edgefd-dra pod (%v)", err)
	}
	return describePod(edgefdNamespace, pods.Items[0].Name)()
}

func intAttr(d resourcev1.Device, name string) int64 {
	a, ok := d.Attributes[resourcev1.QualifiedName(name)]
	if !ok || a.IntValue == nil {
		return -1
	}
	return *a.IntValue
}

func stringAttr(d resourcev1.Device, name string) string {
	a, ok := d.Attributes[resourcev1.QualifiedName(name)]
	if !ok || a.StringValue == nil {
		return ""
	}
	return *a.StringValue
}

// grepLine returns the first line of text containing s, trimmed.
func grepLine(text, s string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func plugDraVeth(t *testing.T) {
	t.Helper()
	run(t, "ip", "link", "add", draVeth, "type", "veth", "peer", "name", draVethPeer)
}

func unplugDraVeth(t *testing.T) {
	t.Helper()
	run(t, "ip", "link", "del", draVeth)
}

func vethPresent() bool {
	_, err := os.Stat("/sys/class/net/" + draVeth)
	return err == nil
}

// waitDevice waits until the real node's pool has (or lacks) a device; returns when seen.
func waitDevice(t *testing.T, name string, present bool, timeout time.Duration) time.Time {
	t.Helper()
	var seen time.Time
	poll(t, fmt.Sprintf("device %s present=%v in the node's ResourceSlices", name, present), timeout,
		func(ctx context.Context) (bool, error) {
			devices, _, err := nodeDevices(ctx)
			if err != nil {
				return false, err
			}
			_, ok := devices[name]
			if ok == present {
				seen = time.Now()
				return true, nil
			}
			return false, nil
		}, describeSlices, describeDraPlugin)
	return seen
}

// claimTemplate asks for count devices of class, with an optional CEL selector.
func claimTemplate(name, class string, count int64, cel string) *resourcev1.ResourceClaimTemplate {
	request := resourcev1.DeviceRequest{Name: "req", Exactly: &resourcev1.ExactDeviceRequest{
		DeviceClassName: class, AllocationMode: resourcev1.DeviceAllocationModeExactCount, Count: count}}
	if cel != "" {
		request.Exactly.Selectors = []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: cel}}}
	}
	return &resourcev1.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{
			Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{request}}}},
	}
}

func createClaimTemplate(t *testing.T, ns string, tmpl *resourcev1.ResourceClaimTemplate) {
	t.Helper()
	if _, err := client.ResourceV1().ResourceClaimTemplates(ns).Create(context.Background(), tmpl,
		metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ResourceClaimTemplate %s/%s: %v", ns, tmpl.Name, err)
	}
}

// withClaim makes the pod's container use a claim made from the template.
func withClaim(pod *corev1.Pod, template string) *corev1.Pod {
	pod.Spec.ResourceClaims = append(pod.Spec.ResourceClaims, corev1.PodResourceClaim{
		Name: "devices", ResourceClaimTemplateName: ptr.To(template)})
	pod.Spec.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: "devices"}}
	return pod
}

// podClaim returns the ResourceClaim generated for the pod's claim "devices" (or the extended
// resource claim when that is all it has).
func podClaim(ctx context.Context, pod *corev1.Pod) (*resourcev1.ResourceClaim, error) {
	name := ""
	for _, s := range pod.Status.ResourceClaimStatuses {
		if s.ResourceClaimName != nil {
			name = *s.ResourceClaimName
		}
	}
	if name == "" && pod.Status.ExtendedResourceClaimStatus != nil {
		name = pod.Status.ExtendedResourceClaimStatus.ResourceClaimName
	}
	if name == "" {
		return nil, fmt.Errorf("pod %s/%s has no generated ResourceClaim yet", pod.Namespace, pod.Name)
	}
	return client.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
}

func describeClaims(ns string) func() string {
	return func() string {
		claims, err := client.ResourceV1().ResourceClaims(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return "ResourceClaims: " + err.Error()
		}
		var b strings.Builder
		for _, c := range claims.Items {
			status, _ := json.Marshal(c.Status)
			fmt.Fprintf(&b, "--- claim %s/%s uid %s status %s\n", ns, c.Name, c.UID, status)
		}
		return b.String()
	}
}

// allocatedDevices returns the devices of edgefd.io the claim was allocated on the real node.
func allocatedDevices(t *testing.T, claim *resourcev1.ResourceClaim) []string {
	t.Helper()
	if claim.Status.Allocation == nil {
		t.Fatalf("claim %s/%s is not allocated", claim.Namespace, claim.Name)
	}
	var out []string
	for _, r := range claim.Status.Allocation.Devices.Results {
		if r.Driver != draDriver || r.Pool != env.node {
			t.Fatalf("claim %s/%s: result %+v is not edgefd.io's on pool %s", claim.Namespace, claim.Name, r, env.node)
		}
		out = append(out, r.Device)
	}
	sort.Strings(out)
	return out
}

func claimSpecPath(claim *resourcev1.ResourceClaim) string {
	return filepath.Join(cdiDir, "edgefd.io-device_"+string(claim.UID)+".json")
}

// waitPodLogs waits until the container printed `marker`; returns its logs.
func waitPodLogs(t *testing.T, ns, name, marker string) string {
	t.Helper()
	var logs string
	poll(t, fmt.Sprintf("pod %s/%s to print %q", ns, name, marker), time.Minute, func(context.Context) (bool, error) {
		l, err := podLogs(ns, name, "main")
		logs = l
		return err == nil && strings.Contains(l, marker), nil
	}, describePod(ns, name))
	return logs
}

// checkBigCores checks EDGEFD_BIG_CPUS in a container's logs: two big cores of the fixture,
// pinned to for real.
func checkBigCores(t *testing.T, logs string) []string {
	t.Helper()
	big := bigCores(t)
	value, ok := envValue(logs, "EDGEFD_BIG_CPUS")
	cpus := strings.Split(value, ",")
	if !ok || len(cpus) != 2 {
		t.Fatalf("EDGEFD_BIG_CPUS = %q, want two cores\n%s", value, logs)
	}
	for _, c := range cpus {
		n, err := strconv.Atoi(c)
		if err != nil || !big[n] {
			t.Fatalf("EDGEFD_BIG_CPUS = %q: cpu %q is not a big core (big: %v)", value, c, big)
		}
	}
	if !strings.Contains(logs, "pinned=ok") {
		t.Fatalf("taskset -c %s failed inside the container:\n%s", value, logs)
	}
	return cpus
}

const bigCoresScript = `echo "EDGEFD_BIG_CPUS=$EDGEFD_BIG_CPUS"
taskset -c "$EDGEFD_BIG_CPUS" true && echo pinned=ok
echo started; exec sleep 3600`

func waitPodGone(t *testing.T, ns, name string) {
	t.Helper()
	poll(t, "pod "+name+" to be gone", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func waitDraPluginReady(t *testing.T, timeout time.Duration) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	poll(t, "the edgefd-dra pod to be Ready", timeout, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(edgefdNamespace).List(ctx, metav1.ListOptions{LabelSelector: draSelector})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					pod = p
					return true, nil
				}
			}
		}
		return false, nil
	}, describeDraPlugin, describeLog("kubelet"))
	return pod
}

// A client with the edgefd-dra account's token as a plugin pod on `node` would have it: bound
// to that node, so it carries the node-name claim the own-node policy reads.
func draPluginClient(t *testing.T, node string) kubernetes.Interface {
	token := strings.TrimSpace(kubectl(t, "-n", edgefdNamespace, "create", "token", "edgefd-dra",
		"--duration", "10m", "--bound-object-kind", "Node", "--bound-object-name", node))
	config := rest.AnonymousClientConfig(restConfig)
	config.BearerToken = token
	return kubernetes.NewForConfigOrDie(config)
}

func TestDRA(t *testing.T) {
	requireCluster(t)
	ns := testNamespace(t, "e2e-dra")
	if vethPresent() { // left by an interrupted run
		unplugDraVeth(t)
	}
	t.Cleanup(func() {
		if vethPresent() {
			_ = runQuiet("ip", "link", "del", draVeth)
		}
	})

	t.Run("containerd has CDI on, reading the directory edgefd writes", func(t *testing.T) {
		// containerd 2.x has no enable_cdi: CDI is always on (its config migration skips the
		// key). Older ones (1.7) need enable_cdi = true, which this suite does not run.
		version := run(t, filepath.Join(env.bin, "containerd"), "--version")
		fields := strings.Fields(version)
		if len(fields) < 3 || !strings.HasPrefix(fields[2], "v2.") {
			t.Fatalf("containerd --version: %q, want v2.x (CDI always on)", version)
		}
		dump := run(t, filepath.Join(env.bin, "containerd"), "--config",
			filepath.Join(filepath.Dir(env.logs), "containerd.toml"), "config", "dump")
		if !strings.Contains(dump, "cdi_spec_dirs") || !strings.Contains(dump, "'"+cdiDir+"'") {
			t.Fatalf("containerd's cdi_spec_dirs lack %s:\n%s", cdiDir, dump)
		}
		t.Logf("%s; %s", strings.TrimSpace(version), grepLine(dump, "cdi_spec_dirs"))
	})

	t.Run("the plugin registers with the kubelet and the node's pool has the right devices and attributes", func(t *testing.T) {
		waitDraPluginReady(t, 2*time.Minute)
		if v, err := metric(draMetrics, "edgefd_dra_registered"); err != nil || v != 1 {
			t.Fatalf("edgefd_dra_registered = %v (%v), want 1 (the kubelet accepted the plugin)", v, err)
		}
		// What the same program prints for the same inputs on the host.
		var printed []resourcev1.ResourceSlice
		out := draDryRun(t, "--print-slices", "--output", "json", "--node-name", env.node)
		if err := json.Unmarshal([]byte(out), &printed); err != nil {
			t.Fatalf("--print-slices: %v\n%s", err, out)
		}
		want := map[string]map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{}
		for _, s := range printed {
			for _, d := range s.Spec.Devices {
				want[d.Name] = d.Attributes
			}
		}
		var devices map[string]resourcev1.Device
		var slices []resourcev1.ResourceSlice
		poll(t, "the node's pool to equal the dry run", time.Minute, func(ctx context.Context) (bool, error) {
			var err error
			devices, slices, err = nodeDevices(ctx)
			if err != nil || len(devices) != len(want) {
				return false, err
			}
			for name, attrs := range want {
				if d, ok := devices[name]; !ok || !reflect.DeepEqual(d.Attributes, attrs) {
					return false, nil
				}
			}
			return true, nil
		}, describeSlices, func() string { return "--- dry run (--print-slices)\n" + out })
		for _, s := range slices {
			if s.Spec.Pool.Name != env.node || s.Spec.NodeName == nil || *s.Spec.NodeName != env.node {
				t.Errorf("slice %s: pool %q node %v, want both %q", s.Name, s.Spec.Pool.Name, s.Spec.NodeName, env.node)
			}
			if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Node" || s.OwnerReferences[0].Name != env.node {
				t.Errorf("slice %s: owner references %+v, want the Node %s", s.Name, s.OwnerReferences, env.node)
			}
		}
		// And what the fixture says, independently of the program: two Cortex-A72 big cores of
		// capacity 1024 at 1800 MHz, four Cortex-A53 little ones of capacity 381, and the e2e
		// accelerator.
		big, little := 0, 0
		for _, d := range devices {
			if stringAttr(d, "kind") != "cpu" {
				continue
			}
			switch stringAttr(d, "coreClass") {
			case "big":
				big++
				if stringAttr(d, "model") != "cortex-a72" || intAttr(d, "capacity") != 1024 || intAttr(d, "maxMHz") != 1800 {
					t.Errorf("big core %s: %+v", d.Name, d.Attributes)
				}
			case "little":
				little++
				if stringAttr(d, "model") != "cortex-a53" || intAttr(d, "capacity") != 381 || intAttr(d, "maxMHz") != 1416 {
					t.Errorf("little core %s: %+v", d.Name, d.Attributes)
				}
			}
			if d.Name != "cpu"+strconv.FormatInt(intAttr(d, "cpu"), 10) {
				t.Errorf("core device %s has cpu attribute %d", d.Name, intAttr(d, "cpu"))
			}
		}
		if big != 2 || little != 4 {
			t.Errorf("%d big and %d little cores in the pool, want 2 and 4\n%s", big, little, describeSlices())
		}
		tun, ok := devices[e2eTunDevice]
		if !ok || stringAttr(tun, "kind") != "accelerator" || stringAttr(tun, "model") != "e2e-tun" ||
			stringAttr(tun, "stableID") != "/sys/devices/virtual/misc/tun" {
			t.Errorf("no e2e-tun accelerator with its attributes in the pool\n%s", describeSlices())
		}
	})

	t.Run("the cluster's DeviceClasses are what the program prints for its rules", func(t *testing.T) {
		out := draDryRun(t, "--print-device-classes")
		checked := 0
		for _, doc := range strings.Split(out, "\n---\n") {
			var class resourcev1.DeviceClass
			if err := yaml.Unmarshal([]byte(doc), &class); err != nil {
				t.Fatalf("--print-device-classes: %v\n%s", err, doc)
			}
			if class.Name == "" {
				continue // the leading comment
			}
			got, err := client.ResourceV1().DeviceClasses().Get(context.Background(), class.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("DeviceClass %s: %v", class.Name, err)
				continue
			}
			if !reflect.DeepEqual(got.Spec.Selectors, class.Spec.Selectors) {
				t.Errorf("DeviceClass %s: selectors %+v, the program prints %+v", class.Name, got.Spec.Selectors,
					class.Spec.Selectors)
			}
			checked++
		}
		if checked < 3 {
			t.Fatalf("only %d DeviceClasses printed:\n%s", checked, out)
		}
	})

	t.Run("the plugin's service account may write only its own node's slices", func(t *testing.T) {
		requirePaperNodes(t)
		// The edgefd-dra account's token as a plugin pod on the paper node paper-rock-5b would
		// have it: bound to that node, so it carries the node-name claim the policy reads.
		paper := "paper-rock-5b"
		asPlugin := draPluginClient(t, paper)
		slice := func(node string) *resourcev1.ResourceSlice {
			return &resourcev1.ResourceSlice{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-policy-"},
				Spec: resourcev1.ResourceSliceSpec{
					Driver: draDriver, NodeName: ptr.To(node),
					Pool:    resourcev1.ResourcePool{Name: node, Generation: 1, ResourceSliceCount: 1},
					Devices: []resourcev1.Device{{Name: "probe"}},
				},
			}
		}
		dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		if _, err := asPlugin.ResourceV1().ResourceSlices().Create(context.Background(), slice(paper), dryRun); err != nil {
			t.Fatalf("a slice for its own node %s was refused: %v", paper, err)
		}
		_, err := asPlugin.ResourceV1().ResourceSlices().Create(context.Background(), slice(env.node), dryRun)
		if err == nil || !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) ||
			!strings.Contains(err.Error(), "edgefd-dra-own-node") {
			t.Fatalf("a slice for another node (%s) from %s's plugin: %v; want the own-node policy to refuse it",
				env.node, paper, err)
		}
		t.Logf("refused: %v", err)
		// Deleting the real node's slices is refused too.
		_, slices, err := nodeDevices(context.Background())
		if err != nil || len(slices) == 0 {
			t.Fatalf("no slices of %s: %v", env.node, err)
		}
		err = asPlugin.ResourceV1().ResourceSlices().Delete(context.Background(), slices[0].Name,
			metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), "edgefd-dra-own-node") {
			t.Fatalf("deleting %s's slice %s from %s's plugin: %v; want it refused", env.node, slices[0].Name, paper, err)
		}
	})

	t.Run("the plugin's service account may not publish a slice into another node's pool", func(t *testing.T) {
		requirePaperNodes(t)
		// A slice of its own node (nodeName passes) whose pool is the real node's: the scheduler
		// would take it for that pool's slices and hide that node's devices.
		paper := "paper-rock-5b"
		asPlugin := draPluginClient(t, paper)
		slice := func(node, pool string) *resourcev1.ResourceSlice {
			return &resourcev1.ResourceSlice{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-pool-"},
				Spec: resourcev1.ResourceSliceSpec{
					Driver: draDriver, NodeName: ptr.To(node),
					Pool:    resourcev1.ResourcePool{Name: pool, Generation: 1 << 40, ResourceSliceCount: 1},
					Devices: []resourcev1.Device{{Name: "probe"}},
				},
			}
		}
		dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		_, err := asPlugin.ResourceV1().ResourceSlices().Create(context.Background(), slice(paper, env.node), dryRun)
		if err == nil || !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) ||
			!strings.Contains(err.Error(), "edgefd-dra-own-node") {
			t.Fatalf("a slice of %s in %s's pool from %s's plugin: %v; want the own-node policy to refuse it\n%s",
				paper, env.node, paper, err, kubectl(t, "get", "validatingadmissionpolicy", "edgefd-dra-own-node", "-o", "yaml"))
		}
		t.Logf("refused: %v", err)
		// Its own pool is still its own.
		if _, err := asPlugin.ResourceV1().ResourceSlices().Create(context.Background(), slice(paper, paper), dryRun); err != nil {
			t.Fatalf("a slice of %s in its own pool was refused: %v", paper, err)
		}
		// An update cannot move a slice into another pool: the API server keeps spec.pool.name
		// (and spec.nodeName) immutable, so the create is where the policy must decide.
	})

	t.Run("a pod claiming two big cores by CEL is allocated, prepared, and sees EDGEFD_BIG_CPUS from CDI", func(t *testing.T) {
		createClaimTemplate(t, ns, claimTemplate("two-big-cores", "edgefd.io-big-cpu", 2,
			`device.attributes["edgefd.io"].capacity >= 1000`))
		var startTimes []time.Duration
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("dra-big-cores-%d", i)
			// No edgefd.io resource in its limits and no EDGEFD_ variable in its spec: only the
			// claim's CDI devices can put EDGEFD_BIG_CPUS in its environment.
			pod := onRealNode(withClaim(shellPod(name, bigCoresScript, corev1.RestartPolicyNever), "two-big-cores"))
			created := time.Now()
			createPod(t, ns, pod)
			running := waitPodPhase(t, ns, name, corev1.PodRunning, 2*time.Minute)
			startTimes = append(startTimes, time.Since(created))
			if running.Spec.NodeName != env.node {
				t.Fatalf("pod landed on %s, want the real node %s", running.Spec.NodeName, env.node)
			}
			logs := waitPodLogs(t, ns, name, "started")
			cpus := checkBigCores(t, logs)
			claim, err := podClaim(context.Background(), running)
			if err != nil {
				t.Fatal(err)
			}
			devices := allocatedDevices(t, claim)
			want := []string{"cpu" + cpus[0], "cpu" + cpus[1]}
			sort.Strings(want)
			if !reflect.DeepEqual(devices, want) {
				t.Fatalf("claim allocated %v, the container got EDGEFD_BIG_CPUS for %v", devices, want)
			}
			if len(claim.Status.ReservedFor) != 1 || claim.Status.ReservedFor[0].UID != running.UID {
				t.Fatalf("claim reserved for %+v, want the pod %s", claim.Status.ReservedFor, running.UID)
			}
			spec, err := os.ReadFile(claimSpecPath(claim))
			if err != nil || !strings.Contains(string(spec), "EDGEFD_BIG_CPUS=") {
				t.Fatalf("the claim's CDI spec %s: %v\n%s", claimSpecPath(claim), err, spec)
			}
			deletePodNow(ns, name)
			waitPodGone(t, ns, name)
			// NodeUnprepareResources removed the claim's spec.
			poll(t, "the claim's CDI spec to be removed", time.Minute, func(context.Context) (bool, error) {
				_, err := os.Stat(claimSpecPath(claim))
				return os.IsNotExist(err), nil
			}, describeLog("kubelet"))
		}
		recordFigure("dra_pod_create_to_running_two_big_cores_ms", map[string]any{
			"median": ms(median(startTimes)), "runs": msList(startTimes)})
		t.Logf("pod create -> Running with a DRA claim for two big cores: median %v of %d",
			median(startTimes).Round(time.Millisecond), len(startTimes))
	})

	t.Run("a claim for a driver newer than 2.0.0 is allocated, one for a newer one than the node has stays pending", func(t *testing.T) {
		// The e2e accelerator's driver prints "v2.1" (the node fixture's module version file):
		// the slice says 2.1.0, typed as a version.
		devices, _, err := nodeDevices(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tun, ok := devices[e2eTunDevice]
		if !ok {
			t.Fatalf("no %s in the pool\n%s", e2eTunDevice, describeSlices())
		}
		if v := tun.Attributes["driverVersion"].VersionValue; v == nil || *v != "2.1.0" {
			t.Fatalf("%s driverVersion = %+v, want the version 2.1.0\n%s", e2eTunDevice, tun.Attributes["driverVersion"], describeSlices())
		}
		createClaimTemplate(t, ns, claimTemplate("new-driver", "edgefd.io-e2e-tun", 1,
			`device.attributes["edgefd.io"].driverVersion.isGreaterThan(semver("2.0.0"))`))
		createClaimTemplate(t, ns, claimTemplate("newer-driver", "edgefd.io-e2e-tun", 1,
			`device.attributes["edgefd.io"].driverVersion.isGreaterThan(semver("2.1.0"))`))
		matching := onRealNode(withClaim(shellPod("dra-new-driver", "exec sleep 3600", corev1.RestartPolicyNever), "new-driver"))
		createPod(t, ns, matching)
		running := waitPodPhase(t, ns, matching.Name, corev1.PodRunning, 2*time.Minute)
		claim, err := podClaim(context.Background(), running)
		if err != nil {
			t.Fatal(err)
		}
		if got := allocatedDevices(t, claim); !reflect.DeepEqual(got, []string{e2eTunDevice}) {
			t.Fatalf("the claim for a driver newer than 2.0.0 got %v, want [%s]", got, e2eTunDevice)
		}
		deletePodNow(ns, matching.Name)
		waitPodGone(t, ns, matching.Name)

		pending := onRealNode(withClaim(shellPod("dra-newer-driver", "exec sleep 3600", corev1.RestartPolicyNever), "newer-driver"))
		createPod(t, ns, pending)
		message := waitUnschedulable(t, ns, pending.Name, describeClaims(ns))
		p, err := client.CoreV1().Pods(ns).Get(context.Background(), pending.Name, metav1.GetOptions{})
		if err != nil || p.Spec.NodeName != "" {
			t.Fatalf("pod is not unbound\n%s", describePod(ns, pending.Name)())
		}
		if claim, err := podClaim(context.Background(), p); err != nil || claim.Status.Allocation != nil {
			t.Fatalf("the claim for a driver newer than 2.1.0: %v, allocation %+v; want it unallocated", err, claim)
		}
		t.Logf("driverVersion 2.1.0: isGreaterThan(2.0.0) allocated %s; isGreaterThan(2.1.0) pending: %s", e2eTunDevice, message)
		deletePodNow(ns, pending.Name)
	})

	t.Run("a claim nothing satisfies stays pending with the scheduler's reason", func(t *testing.T) {
		createClaimTemplate(t, ns, claimTemplate("impossible-cores", "edgefd.io-big-cpu", 2,
			`device.attributes["edgefd.io"].capacity >= 2000`))
		pod := onRealNode(withClaim(shellPod("dra-impossible", "exec sleep 3600", corev1.RestartPolicyNever),
			"impossible-cores"))
		createPod(t, ns, pod)
		message := waitUnschedulable(t, ns, pod.Name, describeClaims(ns))
		if !strings.Contains(message, "cannot allocate all claims") {
			t.Fatalf("scheduler says %q, want it to name the claim it cannot allocate", message)
		}
		p, err := client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
			t.Fatalf("pod is not Pending and unbound\n%s", describePod(ns, pod.Name)())
		}
		if claim, err := podClaim(context.Background(), p); err != nil || claim.Status.Allocation != nil {
			t.Fatalf("the pod's claim: %v, allocation %+v; want it unallocated", err, claim)
		}
		t.Logf("scheduler: %s", message)
		deletePodNow(ns, pod.Name)
	})

	t.Run("a plugged device joins the node's slice and an unplugged one leaves it", func(t *testing.T) {
		var plugs, unplugs []time.Duration
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			plugDraVeth(t)
			plugs = append(plugs, waitDevice(t, draNetDevice, true, sliceDeadline).Sub(t0))
			t0 = time.Now()
			unplugDraVeth(t)
			unplugs = append(unplugs, waitDevice(t, draNetDevice, false, sliceDeadline).Sub(t0))
		}
		recordFigure("dra_plug_to_slice_ms", map[string]any{"median": ms(median(plugs)), "runs": msList(plugs)})
		recordFigure("dra_unplug_to_slice_ms", map[string]any{"median": ms(median(unplugs)), "runs": msList(unplugs)})
		t.Logf("ip link add -> device in the ResourceSlice: median %v; ip link del -> gone: median %v (of %d, polled every 100 ms)",
			median(plugs).Round(time.Millisecond), median(unplugs).Round(time.Millisecond), len(plugs))
	})

	t.Run("a pod asking for the extended resource edgefd.io/e2e-dra-net: 1 is served through DRA", func(t *testing.T) {
		plugDraVeth(t)
		defer unplugDraVeth(t)
		waitDevice(t, draNetDevice, true, sliceDeadline)
		node, err := getNode(context.Background(), env.node)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := node.Status.Allocatable["edgefd.io/e2e-dra-net"]; ok {
			t.Fatalf("the node advertises edgefd.io/e2e-dra-net itself: the test would not go through DRA")
		}
		pod := onRealNode(withLimits(shellPod("dra-extended", `echo "EDGEFD_E2E_DRA_NET_DEVICES=$EDGEFD_E2E_DRA_NET_DEVICES"
echo started`, corev1.RestartPolicyNever), map[string]string{"edgefd.io/e2e-dra-net": "1"}))
		createPod(t, ns, pod)
		done := waitPodPhase(t, ns, pod.Name, corev1.PodSucceeded, 2*time.Minute)
		if done.Status.ExtendedResourceClaimStatus == nil {
			t.Fatalf("pod has no extendedResourceClaimStatus: the scheduler did not use DRA\n%s", describePod(ns, pod.Name)())
		}
		logs := waitPodLogs(t, ns, pod.Name, "started")
		if v, _ := envValue(logs, "EDGEFD_E2E_DRA_NET_DEVICES"); v != "/sys/devices/virtual/net/"+draVeth {
			t.Fatalf("EDGEFD_E2E_DRA_NET_DEVICES = %q, want the veth's stable ID\n%s", v, logs)
		}
		deletePodNow(ns, pod.Name)
		waitPodGone(t, ns, pod.Name)
	})

	t.Run("a vanished device a pod holds is tainted, the pod evicted and rescheduled where it reappears", func(t *testing.T) {
		plugDraVeth(t)
		waitDevice(t, draNetDevice, true, sliceDeadline)
		createClaimTemplate(t, ns, claimTemplate("one-dra-net", "edgefd.io-e2e-dra-net", 1, ""))
		labels := map[string]string{"app": "dra-stick"}
		template := onRealNode(withClaim(shellPod("", "echo started; exec sleep 3600", corev1.RestartPolicyAlways), "one-dra-net"))
		template.Labels = labels
		deploy := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "dra-stick"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: template.ObjectMeta, Spec: template.Spec},
			},
		}
		if _, err := client.AppsV1().Deployments(ns).Create(context.Background(), deploy, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		runningPod := func(what string) corev1.Pod {
			var pod corev1.Pod
			poll(t, what, 2*time.Minute, func(ctx context.Context) (bool, error) {
				pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=dra-stick"})
				if err != nil {
					return false, err
				}
				for _, p := range pods.Items {
					if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
						pod = p
						return true, nil
					}
				}
				return false, nil
			}, describeClaims(ns), describeSlices)
			return pod
		}
		first := runningPod("the Deployment's pod holding the veth to run")
		unplugged := time.Now()
		unplugDraVeth(t)
		// The held device stays in the slice, tainted NoExecute.
		poll(t, "the held, vanished device to be tainted", sliceDeadline, func(ctx context.Context) (bool, error) {
			devices, _, err := nodeDevices(ctx)
			if err != nil {
				return false, err
			}
			for _, taint := range devices[draNetDevice].Taints {
				if taint.Key == unpluggedTaint && taint.Effect == resourcev1.DeviceTaintEffectNoExecute {
					return true, nil
				}
			}
			return false, nil
		}, describeSlices)
		// The device-taint eviction controller deletes the pod ...
		poll(t, "the pod holding the vanished device to be evicted", 2*time.Minute, func(ctx context.Context) (bool, error) {
			p, err := client.CoreV1().Pods(ns).Get(ctx, first.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			return p.DeletionTimestamp != nil, nil
		}, describePod(ns, first.Name), describeSlices)
		evicted := time.Since(unplugged)
		// ... its replacement waits for the device ...
		poll(t, "the replacement pod to wait unschedulable for the device", time.Minute, func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=dra-stick"})
			if err != nil {
				return false, err
			}
			for _, p := range pods.Items {
				for _, c := range p.Status.Conditions {
					if p.Name != first.Name && c.Type == corev1.PodScheduled && c.Reason == "Unschedulable" {
						return true, nil
					}
				}
			}
			return false, nil
		}, describeClaims(ns), describeSlices)
		// ... and runs once the device is back.
		plugged := time.Now()
		plugDraVeth(t)
		second := runningPod("the replacement pod to run once the device is back")
		if second.Name == first.Name {
			t.Fatalf("the evicted pod %s is still the one running", first.Name)
		}
		recordFigure("dra_unplug_to_eviction_ms", ms(evicted))
		recordFigure("dra_replug_to_replacement_running_ms", ms(time.Since(plugged)))
		t.Logf("unplug -> pod evicted %v; replug -> replacement Running %v", evicted.Round(time.Millisecond),
			time.Since(plugged).Round(time.Millisecond))
		if err := client.AppsV1().Deployments(ns).Delete(context.Background(), "dra-stick", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deletePodNow(ns, second.Name)
		waitPodGone(t, ns, second.Name)
		unplugDraVeth(t)
	})

	t.Run("a plugin restart with prepared claims loses nothing", func(t *testing.T) {
		createClaimTemplate(t, ns, claimTemplate("two-big-cores-restart", "edgefd.io-big-cpu", 2, ""))
		name := "dra-held-across-restart"
		createPod(t, ns, onRealNode(withClaim(shellPod(name, bigCoresScript, corev1.RestartPolicyNever),
			"two-big-cores-restart")))
		before := waitPodPhase(t, ns, name, corev1.PodRunning, 2*time.Minute)
		checkBigCores(t, waitPodLogs(t, ns, name, "started"))
		claim, err := podClaim(context.Background(), before)
		if err != nil {
			t.Fatal(err)
		}
		specBefore, err := os.ReadFile(claimSpecPath(claim))
		if err != nil {
			t.Fatal(err)
		}
		containerBefore, _ := containerID(before)
		old := waitDraPluginReady(t, time.Minute)
		reapplyOnFailure(t, "e2e/deploy/dra")
		kubectl(t, "-n", edgefdNamespace, "delete", "pod", old.Name, "--wait=true")
		restarted := waitDraPluginReady(t, 2*time.Minute)
		if restarted.Name == old.Name {
			t.Fatalf("the plugin pod %s was not replaced", old.Name)
		}
		// The new plugin took over the claim: its checkpoint has it, its spec is unchanged, the
		// pool still has every device, the pod and its container were not touched.
		checkpoint, err := os.ReadFile(draCheckpoint)
		if err != nil || !strings.Contains(string(checkpoint), string(claim.UID)) {
			t.Fatalf("checkpoint %s does not list claim %s (%v)\n%s", draCheckpoint, claim.UID, err, checkpoint)
		}
		specAfter, err := os.ReadFile(claimSpecPath(claim))
		if err != nil || string(specAfter) != string(specBefore) {
			t.Fatalf("the claim's CDI spec changed across the restart (%v):\nbefore %s\nafter %s", err, specBefore, specAfter)
		}
		if v, err := metric(draMetrics, "edgefd_dra_prepared_claims"); err != nil || v < 1 {
			t.Fatalf("the restarted plugin reports %v prepared claims (%v), want the held one", v, err)
		}
		waitDevice(t, "cpu0", true, time.Minute)
		after, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		containerAfter, restarts := containerID(after)
		if after.Status.Phase != corev1.PodRunning || containerAfter != containerBefore || restarts != 0 {
			t.Fatalf("the pod was disturbed: phase %s, container %s -> %s, %d restarts", after.Status.Phase,
				containerBefore, containerAfter, restarts)
		}
		// The restarted plugin unprepares the claim it inherited ...
		deletePodNow(ns, name)
		waitPodGone(t, ns, name)
		poll(t, "the inherited claim's CDI spec to be removed", time.Minute, func(context.Context) (bool, error) {
			_, err := os.Stat(claimSpecPath(claim))
			return os.IsNotExist(err), nil
		}, describeLog("kubelet"), describeDraPlugin)
		if v, err := metric(draMetrics, "edgefd_dra_unprepare_errors_total"); err != nil || v != 0 {
			t.Fatalf("edgefd_dra_unprepare_errors_total = %v (%v)", v, err)
		}
		// ... and prepares new ones.
		again := "dra-after-restart"
		createPod(t, ns, onRealNode(withClaim(shellPod(again, bigCoresScript, corev1.RestartPolicyNever),
			"two-big-cores-restart")))
		waitPodPhase(t, ns, again, corev1.PodRunning, 2*time.Minute)
		checkBigCores(t, waitPodLogs(t, ns, again, "started"))
		deletePodNow(ns, again)
		waitPodGone(t, ns, again)
	})
}
