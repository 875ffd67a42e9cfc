package edgefdcli

import (
	"reflect"
	"testing"
)

func TestPluginResourcesCountsHealthyDevicesPerResource(t *testing.T) {
	out := []byte(`edgefd.io/big-cpu (EDGEFD_BIG_CPUS)
  cpu0 Healthy group=0
  cpu1 Unhealthy group=0
edgefd.io/e2e-tun (EDGEFD_E2E_TUN_DEVICES, EDGEFD_E2E_TUN_DEVNODES)
  /devices/virtual/misc/tun Healthy /dev/net/tun
little-cpu (EDGEFD_LITTLE_CPUS)
`)
	got, err := PluginResources(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"edgefd.io/big-cpu": 1, "edgefd.io/e2e-tun": 1, "edgefd.io/little-cpu": 0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := PluginResources([]byte("  cpu0 Healthy\n")); err == nil {
		t.Fatal("a device line before any resource was accepted")
	}
	if got, _ := PluginResources([]byte("no resources\n")); len(got) != 0 {
		t.Fatalf("no resources gave %v", got)
	}
}
