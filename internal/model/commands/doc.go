// Package commands holds the Go form of the AWS CodeDeploy Command service
// model, the host-agent API that codedeploy-agent polls. The types,
// validators, operation table and dispatcher are generated; see
// ../gen.
package commands

//go:generate go run ../gen -spec ../spec/codedeploy-commands-2014-10-06.service.json -pkg commands -iface Service -out zz_generated.go
