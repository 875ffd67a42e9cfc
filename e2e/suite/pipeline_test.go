package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sinkReport is what `edgefd-pipeline sink --json` prints (frames) and `run --json` prints
// (frames_received).
type sinkReport struct {
	Frames         uint64  `json:"frames"`
	FramesReceived uint64  `json:"frames_received"`
	Drops          uint64  `json:"drops"`
	FPS            float64 `json:"fps"`
	Checksum       float64 `json:"checksum"`
}

// jsonReport finds the last line of logs that parses as a report with frames.
func jsonReport(logs string) (sinkReport, bool) {
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var r sinkReport
		if strings.HasPrefix(lines[i], "{") && json.Unmarshal([]byte(lines[i]), &r) == nil {
			r.Frames = max(r.Frames, r.FramesReceived)
			if r.Frames > 0 {
				return r, true
			}
		}
	}
	return sinkReport{}, false
}

// deploymentPod returns the pod of a one-replica Deployment.
func deploymentPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
	if err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no pod of %s", name)
	}
	return &list.Items[0], nil
}

func TestPipeline(t *testing.T) {
	requireCluster(t)

	t.Run("a 2-stage tiny-YOLO pipeline runs on the real node, chained by Service names over gRPC, and its sink gets every frame with the right checksum", func(t *testing.T) {
		ns := testNamespace(t, "e2e-yolo")
		const frames = 20
		// The reference: the same image computes the same 20 frames in one process.
		ref := onRealNode(shellPod("reference", fmt.Sprintf(
			"exec edgefd-pipeline run --model yolo-tiny --stages 2 --threads 2 --transport inproc --frames %d --policy block --json",
			frames), corev1.RestartPolicyNever))
		createPod(t, ns, ref)
		waitPodPhase(t, ns, ref.Name, corev1.PodSucceeded, 5*time.Minute)
		refLogs, err := podLogs(ns, ref.Name, "main")
		if err != nil {
			t.Fatal(err)
		}
		want, ok := jsonReport(refLogs)
		if !ok || want.Frames != frames {
			t.Fatalf("reference run printed no report of %d frames:\n%s", frames, refLogs)
		}

		kubectl(t, "apply", "-n", ns, "-k", filepath.Join(env.repo, "e2e", "deploy", "yolo-real"),
			"-l", "app.kubernetes.io/part-of=yolo-pipeline")
		// The source (0 replicas in the overlay) starts once the stages are Ready and the sink runs.
		for _, name := range []string{"yolo-stage-0", "yolo-stage-1", "yolo-sink"} {
			poll(t, name+" to run", 5*time.Minute, func(ctx context.Context) (bool, error) {
				pod, err := deploymentPod(ctx, ns, name)
				if err != nil {
					return false, nil
				}
				return pod.Status.Phase == corev1.PodRunning && (name == "yolo-sink" || podReady(pod)), nil
			}, func() string {
				if pod, err := deploymentPod(context.Background(), ns, name); err == nil {
					return describePod(ns, pod.Name)()
				}
				return "no pod of " + name
			})
		}
		kubectl(t, "-n", ns, "scale", "deployment/yolo-source", "--replicas=1")
		var got sinkReport
		poll(t, "the sink's report", 5*time.Minute, func(ctx context.Context) (bool, error) {
			pod, err := deploymentPod(ctx, ns, "yolo-sink")
			if err != nil || len(pod.Status.ContainerStatuses) == 0 {
				return false, err
			}
			// The sink prints its report and exits; the Deployment then restarts it.
			previous := pod.Status.ContainerStatuses[0].RestartCount > 0
			data, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Previous: previous}).DoRaw(ctx)
			if err != nil {
				return false, nil
			}
			got, ok = jsonReport(string(data))
			return ok, nil
		}, func() string {
			var b strings.Builder
			for _, name := range []string{"yolo-source", "yolo-stage-0", "yolo-stage-1", "yolo-sink"} {
				if pod, err := deploymentPod(context.Background(), ns, name); err == nil {
					b.WriteString(describePod(ns, pod.Name)())
				}
			}
			return b.String()
		})
		for _, name := range []string{"yolo-stage-0", "yolo-stage-1"} {
			pod, err := deploymentPod(context.Background(), ns, name)
			if err != nil {
				t.Fatal(err)
			}
			if pod.Spec.NodeName != env.node {
				t.Errorf("%s ran on %s, want the real node", name, pod.Spec.NodeName)
			}
		}
		t.Logf("sink: %d frames, %d dropped, %.1f fps, checksum %.6f; reference checksum %.6f",
			got.Frames, got.Drops, got.FPS, got.Checksum, want.Checksum)
		if got.Frames != frames || got.Drops != 0 {
			t.Fatalf("sink got %d frames with %d dropped, want %d and none dropped", got.Frames, got.Drops, frames)
		}
		// The sum of 20 frames' output sums: a lost, repeated or wrong frame moves it by about
		// a twentieth; thread counts only move its last digits (summation order).
		if diff := math.Abs(got.Checksum - want.Checksum); diff > 1e-5*math.Max(1, math.Abs(want.Checksum)) {
			t.Fatalf("sink checksum %.6f, the same frames in one process give %.6f", got.Checksum, want.Checksum)
		}
		recordFigure("yolo_tiny_2_stages_grpc_pods_fps", got.FPS)
	})
}
