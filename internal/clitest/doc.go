// Package clitest holds scripted sessions of the real AWS CLI and of boto3
// against an in-process Cutover server: the proof that unmodified AWS
// tooling works with nothing changed but the endpoint. The sessions live in
// the package's tests and skip (loudly) when the tool is not installed.
package clitest
