// Package terraformtest drives the real terraform binary and the real
// Terraform AWS provider against an in-process Cutover server: the proof
// that infrastructure code written for AWS CodeDeploy applies, plans clean,
// imports and destroys against Cutover with only the endpoints changed.
// The test skips (loudly) when terraform or the provider mirror is absent;
// CUTOVER_TERRAFORM and CUTOVER_TF_PLUGIN_MIRROR locate them.
package terraformtest
