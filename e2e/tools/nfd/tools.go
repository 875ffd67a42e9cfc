//go:build tools

package nfd

import _ "sigs.k8s.io/node-feature-discovery/cmd/nfd-master"
