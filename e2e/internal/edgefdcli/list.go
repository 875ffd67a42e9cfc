// Package edgefdcli reads what edgefd's command-line programs print, for the e2e programs.
package edgefdcli

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// PluginResources parses `edgefd-deviceplugin --list`: a line naming a resource, then one
// indented line per device ("  ID Healthy ..."). It returns the healthy devices per resource
// name (edgefd.io/...); a resource without healthy devices is there with 0.
func PluginResources(out []byte) (map[string]int64, error) {
	counts := map[string]int64{}
	current := ""
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case line == "no resources" || strings.TrimSpace(line) == "":
		case !strings.HasPrefix(line, " "):
			current = strings.Fields(line)[0]
			if !strings.Contains(current, "/") {
				current = "edgefd.io/" + current
			}
			counts[current] = 0
		case current == "":
			return nil, fmt.Errorf("device line before any resource: %q", line)
		default:
			if fields := strings.Fields(line); len(fields) >= 2 && fields[1] == "Healthy" {
				counts[current]++
			}
		}
	}
	return counts, scanner.Err()
}
