// nri-peer plays the container runtime's side of NRI for edgefd-nri's tests: it runs
// github.com/containerd/nri/pkg/adaptation (the code containerd and CRI-O embed) on a socket,
// waits for a plugin to connect and synchronize, drives a scripted sequence of container
// events, and prints what the plugin answered as one JSON object on stdout.
//
//	nri-peer -socket DIR/nri.sock [-timeout 20s] [-restarted]
//
// The node has CPUs 0-3 (the test gives edgefd-nri a --root whose cpu/online says so). The
// script, and what a correct exclusive-policy plugin answers, is in tests/nri/peer_test.cc.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
)

// update is one container update as the test reads it.
type update struct {
	ID   string `json:"id"`
	Cpus string `json:"cpus"`
}

// created is the plugin's answer to CreateContainer.
type created struct {
	Cpus    string   `json:"cpus"` // the adjustment's cpuset; "" when the plugin set none
	Updates []update `json:"updates"`
}

type report struct {
	Sync         []update `json:"sync"`          // updates answered at the first Synchronize
	CreateHolder created  `json:"create_holder"` // EDGEFD_BIG_CPUS=1
	CreatePlain  created  `json:"create_plain"`  // no edgefd cores
	// UpdateContainer asking cpuset 0-3 for the holder of core 1 (the kubelet resizing it).
	Update       []update `json:"update"`
	CreatePartly created  `json:"create_partly"` // EDGEFD_LITTLE_CPUS=0,7 (7 is not online)
	CreateBogus  created  `json:"create_bogus"`  // EDGEFD_MID_CPUS=9 (not online at all)
	CreateForged created  `json:"create_forged"` // EDGEFD_BIG_CPUS=1 set by the pod, not allocated
	// Unsolicited UpdateContainers after RemoveContainer of the running holder of core 1.
	Remove []update `json:"remove"`
	// StopContainer of the holder of core 3 (running since before the plugin came).
	Stop   []update `json:"stop"`
	Resync []update `json:"resync"` // -restarted: Synchronize after the runtime restarted
	// How long CreateContainer took through the plugin, in microseconds: what enforcement adds
	// to a container's creation (the holder's, which also moves the others).
	CreateHolderMicros int64  `json:"create_holder_us"`
	Error              string `json:"error,omitempty"`
}

func updates(in []*nri.ContainerUpdate) []update {
	out := []update{}
	for _, u := range in {
		cpus := ""
		if r := u.GetLinux().GetResources().GetCpu(); r != nil {
			cpus = r.Cpus
		}
		out = append(out, update{ID: u.ContainerId, Cpus: cpus})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func pod(id, namespace string) *nri.PodSandbox {
	return &nri.PodSandbox{Id: id, Name: id, Uid: id + "-uid", Namespace: namespace}
}

func container(id, podID string, state nri.ContainerState, cpus string, env ...string) *nri.Container {
	return &nri.Container{
		Id: id, PodSandboxId: podID, Name: id, State: state,
		Env:   append([]string{"PATH=/usr/bin"}, env...),
		Linux: &nri.LinuxContainer{Resources: &nri.LinuxResources{Cpu: &nri.LinuxCPU{Cpus: cpus}}},
	}
}

// runtime is one adaptation instance and what the plugin sent it.
type runtime struct {
	r       *nri.Adaptation
	syncC   chan []update
	updateC chan []update
}

func start(socket string, pods []*nri.PodSandbox, ctrs []*nri.Container) (*runtime, error) {
	rt := &runtime{syncC: make(chan []update, 4), updateC: make(chan []update, 4)}
	calls := 0
	syncFn := func(ctx context.Context, cb nri.SyncCB) error {
		got, err := cb(ctx, pods, ctrs)
		if err != nil {
			return err
		}
		// Start synchronizes the pre-installed plugins (none) first: not the plugin's answer.
		if calls++; calls == 1 {
			return nil
		}
		rt.syncC <- updates(got)
		return nil
	}
	updateFn := func(_ context.Context, u []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) {
		rt.updateC <- updates(u)
		return nil, nil
	}
	dir := filepath.Dir(socket)
	r, err := nri.New("nri-peer", "0.1", syncFn, updateFn, nri.WithSocketPath(socket),
		nri.WithPluginPath(filepath.Join(dir, "no-plugins")),
		nri.WithPluginConfigPath(filepath.Join(dir, "no-conf")))
	if err != nil {
		return nil, err
	}
	if err := r.Start(); err != nil {
		return nil, err
	}
	rt.r = r
	return rt, nil
}

func wait[T any](c chan T, timeout time.Duration, what string) (T, error) {
	select {
	case v := <-c:
		return v, nil
	case <-time.After(timeout):
		var zero T
		return zero, fmt.Errorf("timed out after %v waiting for %s", timeout, what)
	}
}

func create(rt *runtime, p *nri.PodSandbox, c *nri.Container) (created, error) {
	rpl, err := rt.r.CreateContainer(context.Background(), &nri.CreateContainerRequest{Pod: p, Container: c})
	if err != nil {
		return created{}, fmt.Errorf("CreateContainer %s: %w", c.Id, err)
	}
	out := created{Updates: updates(rpl.GetUpdate())}
	if cpu := rpl.GetAdjust().GetLinux().GetResources().GetCpu(); cpu != nil {
		out.Cpus = cpu.Cpus
	}
	return out, nil
}

func script(socket string, timeout time.Duration, rep *report) error {
	web, sys := pod("web", "default"), pod("dns", "kube-system")
	rt, err := start(socket, []*nri.PodSandbox{web, sys}, []*nri.Container{
		container("plain-running", "web", nri.ContainerState_CONTAINER_RUNNING, ""),
		container("system", "dns", nri.ContainerState_CONTAINER_RUNNING, "0-3"),
		container("holder-3", "web", nri.ContainerState_CONTAINER_RUNNING, "", "EDGEFD_BIG_CPUS=3"),
		container("stopped", "web", nri.ContainerState_CONTAINER_STOPPED, "", "EDGEFD_BIG_CPUS=0"),
	})
	if err != nil {
		return err
	}
	if rep.Sync, err = wait(rt.syncC, timeout, "the plugin to connect and synchronize"); err != nil {
		return err
	}
	holder := container("holder-1", "web", nri.ContainerState_CONTAINER_CREATED, "", "EDGEFD_BIG_CPUS=1")
	began := time.Now()
	if rep.CreateHolder, err = create(rt, web, holder); err != nil {
		return err
	}
	rep.CreateHolderMicros = time.Since(began).Microseconds()
	if rep.CreatePlain, err = create(rt, web, container("plain-new", "web", nri.ContainerState_CONTAINER_CREATED, "")); err != nil {
		return err
	}
	// A container that names core 1 (held by holder-1) without the kubelet having given it.
	forged := container("forged", "web", nri.ContainerState_CONTAINER_CREATED, "", "EDGEFD_BIG_CPUS=1")
	if rep.CreateForged, err = create(rt, web, forged); err != nil {
		return err
	}
	ctx := context.Background()
	resized, err := rt.r.UpdateContainer(ctx, &nri.UpdateContainerRequest{Pod: web, Container: holder,
		LinuxResources: &nri.LinuxResources{Cpu: &nri.LinuxCPU{Cpus: "0-3"}}})
	if err != nil {
		return fmt.Errorf("UpdateContainer: %w", err)
	}
	rep.Update = updates(resized.GetUpdate())
	partly := container("partly", "web", nri.ContainerState_CONTAINER_CREATED, "", "EDGEFD_LITTLE_CPUS=0,7")
	if rep.CreatePartly, err = create(rt, web, partly); err != nil {
		return err
	}
	// The partly valid holder took core 0: free it again so the rest reads simply.
	if _, err = rt.r.StopContainer(ctx, &nri.StopContainerRequest{Pod: web, Container: partly}); err != nil {
		return err
	}
	bogus := container("bogus", "web", nri.ContainerState_CONTAINER_CREATED, "", "EDGEFD_MID_CPUS=9")
	if rep.CreateBogus, err = create(rt, web, bogus); err != nil {
		return err
	}
	holder.State = nri.ContainerState_CONTAINER_RUNNING
	if err = rt.r.RemoveContainer(ctx, &nri.RemoveContainerRequest{Pod: web, Container: holder}); err != nil {
		return err
	}
	if rep.Remove, err = wait(rt.updateC, timeout, "UpdateContainers after RemoveContainer"); err != nil {
		return err
	}
	stopped, err := rt.r.StopContainer(ctx, &nri.StopContainerRequest{Pod: web,
		Container: container("holder-3", "web", nri.ContainerState_CONTAINER_RUNNING, "3", "EDGEFD_BIG_CPUS=3")})
	if err != nil {
		return err
	}
	rep.Stop = updates(stopped.GetUpdate())

	rt.r.Stop()
	return nil
}

// restart is the runtime after a restart (a new process on the same socket): the plugin must
// come back on its own and be synchronized again.
func restart(socket string, timeout time.Duration, rep *report) error {
	web := pod("web", "default")
	rt, err := start(socket, []*nri.PodSandbox{web}, []*nri.Container{
		container("plain-running", "web", nri.ContainerState_CONTAINER_RUNNING, "0-3"),
		container("holder-2", "web", nri.ContainerState_CONTAINER_RUNNING, "2", "EDGEFD_BIG_CPUS=2"),
	})
	if err != nil {
		return err
	}
	defer rt.r.Stop()
	rep.Resync, err = wait(rt.syncC, timeout, "the plugin to reconnect after a runtime restart")
	return err
}

func main() {
	socket := flag.String("socket", "", "the NRI socket to serve")
	timeout := flag.Duration("timeout", 20*time.Second, "how long to wait for each plugin step")
	restarted := flag.Bool("restarted", false, "play the runtime after a restart (Synchronize only)")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "nri-peer: -socket is required")
		os.Exit(2)
	}
	var rep report
	var once sync.Once
	emit := func() { once.Do(func() { json.NewEncoder(os.Stdout).Encode(rep) }) }
	run := script
	if *restarted {
		run = restart
	}
	if err := run(*socket, *timeout, &rep); err != nil {
		rep.Error = err.Error()
		emit()
		os.Exit(1)
	}
	emit()
}
