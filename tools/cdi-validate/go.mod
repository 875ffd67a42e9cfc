module edgefd.io/tools/cdi-validate

go 1.24

require tags.cncf.io/container-device-interface v1.1.2 // indirect
