// Command ocitar writes a single-layer OCI image archive (an OCI image layout in a tar, what
// `ctr images import` reads) from files on disk, without a registry or a container builder:
// the e2e suite's pause and CoreDNS images are one static binary each.
//
//	ocitar -o pause.oci.tar -ref docker.io/edgefd/pause:3.10-e2e -entrypoint /pause pause=/pause
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type blob struct {
	desc descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{descriptor{MediaType: mediaType, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data)),
		Size: int64(len(data))}, data}
}

// epoch keeps archives byte-identical across builds of the same inputs.
var epoch = time.Unix(0, 0).UTC()

// layer returns the gzip-compressed layer tar and the digest of the uncompressed tar (the
// config's diff ID). files maps an absolute path in the image to a file on disk.
func layer(files map[string]string) (compressed []byte, diffID string, err error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	targets := make([]string, 0, len(files))
	for t := range files {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	dirs := map[string]bool{}
	for _, target := range targets {
		// Parent directories first, once each.
		parts := strings.Split(strings.Trim(path.Dir(target), "/"), "/")
		for i := range parts {
			dir := strings.Join(parts[:i+1], "/")
			if dir == "" || dirs[dir] {
				continue
			}
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755,
				ModTime: epoch}); err != nil {
				return nil, "", err
			}
		}
		data, err := os.ReadFile(files[target])
		if err != nil {
			return nil, "", err
		}
		info, err := os.Stat(files[target])
		if err != nil {
			return nil, "", err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(target, "/"),
			Mode: int64(info.Mode().Perm()), Size: int64(len(data)), ModTime: epoch}); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), fmt.Sprintf("sha256:%x", sha256.Sum256(raw.Bytes())), nil
}

func run() error {
	out := flag.String("o", "", "output archive")
	ref := flag.String("ref", "", "image reference, e.g. docker.io/edgefd/pause:3.10-e2e")
	entrypoint := flag.String("entrypoint", "", "entrypoint, space-separated")
	user := flag.String("user", "", "user to run as (uid[:gid])")
	arch := flag.String("arch", runtime.GOARCH, "image architecture")
	flag.Parse()
	if *out == "" || *ref == "" || flag.NArg() == 0 {
		return fmt.Errorf("usage: ocitar -o OUT -ref REF [-entrypoint CMD] [-user UID] PATH_IN_IMAGE=FILE...")
	}
	files := map[string]string{}
	for _, arg := range flag.Args() {
		target, source, ok := strings.Cut(arg, "=")
		if !ok || !strings.HasPrefix(target, "/") {
			return fmt.Errorf("%q: want /path/in/image=file", arg)
		}
		files[target] = source
	}
	layerData, diffID, err := layer(files)
	if err != nil {
		return err
	}
	layerBlob := newBlob("application/vnd.oci.image.layer.v1.tar+gzip", layerData)
	config := map[string]any{
		"architecture": *arch, "os": "linux", "created": epoch.Format(time.RFC3339),
		"config": map[string]any{"Entrypoint": strings.Fields(*entrypoint), "User": *user},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	}
	configJSON, _ := json.Marshal(config)
	configBlob := newBlob("application/vnd.oci.image.config.v1+json", configJSON)
	manifestJSON, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": configBlob.desc, "layers": []descriptor{layerBlob.desc},
	})
	manifestBlob := newBlob("application/vnd.oci.image.manifest.v1+json", manifestJSON)
	manifestDesc := manifestBlob.desc
	tag := (*ref)[strings.LastIndex(*ref, ":")+1:]
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          *ref, // the full name ctr import gives the image
		"org.opencontainers.image.ref.name": tag,
	}
	indexJSON, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{manifestDesc},
	})

	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644,
			Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", indexJSON); err != nil {
		return err
	}
	for _, b := range []blob{layerBlob, configBlob, manifestBlob} {
		if err := add("blobs/sha256/"+strings.TrimPrefix(b.desc.Digest, "sha256:"), b.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, archive.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ocitar:", err)
		os.Exit(1)
	}
}
