// cdi-validate checks CDI spec files with the CDI project's own Go library
// (tags.cncf.io/container-device-interface, the code container runtimes use), so edgefd's
// specs are judged by the reader that matters rather than by edgefd itself.
//
//	cdi-validate DIR [QUALIFIED-DEVICE...]
//
// Every *.json and *.yaml file in DIR is read with cdi.ReadSpec: strict parsing (unknown fields
// are errors), the declared cdiVersion checked against the features the spec uses, vendor,
// class and device names, environment and device nodes validated. Then a cache over DIR, as a
// runtime builds it, must load without errors or conflicting device names. The devices named
// after DIR are injected into an empty OCI spec, and the result is printed as JSON
// ({"env": [...], "devices": [...]}) for the caller to check. Exit status 0 when everything is
// valid, 1 with one line per problem on stderr otherwise, 2 on bad usage.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	oci "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

type injected struct {
	Env     []string `json:"env"`
	Devices []string `json:"devices"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cdi-validate DIR [QUALIFIED-DEVICE...]")
		os.Exit(2)
	}
	dir := os.Args[1]
	problems := 0
	var files []string
	for _, pattern := range []string{"*.json", "*.yaml"} {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", dir, err)
			os.Exit(2)
		}
		files = append(files, matches...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		fmt.Fprintf(os.Stderr, "%s: no CDI spec files\n", dir)
		os.Exit(1)
	}
	for _, file := range files {
		if _, err := cdi.ReadSpec(file, 0); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			problems++
		}
	}

	cache, err := cdi.NewCache(cdi.WithSpecDirs(dir), cdi.WithAutoRefresh(false))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cache: %v\n", dir, err)
		problems++
	}
	if cache != nil {
		for path, errs := range cache.GetErrors() {
			for _, e := range errs {
				fmt.Fprintf(os.Stderr, "%s: cache: %v\n", path, e)
				problems++
			}
		}
	}
	out := injected{Env: []string{}, Devices: []string{}}
	if cache != nil && len(os.Args) > 2 {
		spec := &oci.Spec{Process: &oci.Process{}, Linux: &oci.Linux{}}
		if unresolved, err := cache.InjectDevices(spec, os.Args[2:]...); err != nil {
			fmt.Fprintf(os.Stderr, "inject %v: %v (unresolved: %v)\n", os.Args[2:], err, unresolved)
			problems++
		} else {
			out.Env = append(out.Env, spec.Process.Env...)
			for _, d := range spec.Linux.Devices {
				out.Devices = append(out.Devices, d.Path)
			}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
	if problems > 0 {
		os.Exit(1)
	}
}
