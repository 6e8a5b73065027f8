// Package codedeploy holds the Go form of the AWS CodeDeploy service model:
// one struct per shape, enum constants, validators, the operation table, the
// Service interface and a dispatcher from operation name and JSON body to a
// typed call. Everything except this file is generated; see ../gen.
package codedeploy

//go:generate go run ../gen -spec ../spec/codedeploy-2014-10-06.service.json -paginators ../spec/codedeploy-2014-10-06.paginators.json -pkg codedeploy -iface Service -out zz_generated.go
