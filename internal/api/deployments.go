package api

import (
	"context"

	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
)

// The deployment operations are served by the deployment runner
// (internal/deploy); without one they answer as unimplemented.

// CreateDeployment delegates to the deployment runner.
func (s *Server) CreateDeployment(ctx context.Context, in *cd.CreateDeploymentInput) (*cd.CreateDeploymentOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.CreateDeployment(ctx, in)
	}
	return s.Deployments.CreateDeployment(ctx, in)
}

// GetDeployment delegates to the deployment runner.
func (s *Server) GetDeployment(ctx context.Context, in *cd.GetDeploymentInput) (*cd.GetDeploymentOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.GetDeployment(ctx, in)
	}
	return s.Deployments.GetDeployment(ctx, in)
}

// BatchGetDeployments delegates to the deployment runner.
func (s *Server) BatchGetDeployments(ctx context.Context, in *cd.BatchGetDeploymentsInput) (*cd.BatchGetDeploymentsOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.BatchGetDeployments(ctx, in)
	}
	return s.Deployments.BatchGetDeployments(ctx, in)
}

// ListDeployments delegates to the deployment runner.
func (s *Server) ListDeployments(ctx context.Context, in *cd.ListDeploymentsInput) (*cd.ListDeploymentsOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.ListDeployments(ctx, in)
	}
	return s.Deployments.ListDeployments(ctx, in)
}

// StopDeployment delegates to the deployment runner.
func (s *Server) StopDeployment(ctx context.Context, in *cd.StopDeploymentInput) (*cd.StopDeploymentOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.StopDeployment(ctx, in)
	}
	return s.Deployments.StopDeployment(ctx, in)
}

// ContinueDeployment delegates to the deployment runner.
func (s *Server) ContinueDeployment(ctx context.Context, in *cd.ContinueDeploymentInput) error {
	if s.Deployments == nil {
		return s.Unimplemented.ContinueDeployment(ctx, in)
	}
	return s.Deployments.ContinueDeployment(ctx, in)
}

// SkipWaitTimeForInstanceTermination delegates to the deployment runner.
func (s *Server) SkipWaitTimeForInstanceTermination(ctx context.Context, in *cd.SkipWaitTimeForInstanceTerminationInput) error {
	if s.Deployments == nil {
		return s.Unimplemented.SkipWaitTimeForInstanceTermination(ctx, in)
	}
	return s.Deployments.SkipWaitTimeForInstanceTermination(ctx, in)
}

// ListDeploymentTargets delegates to the deployment runner.
func (s *Server) ListDeploymentTargets(ctx context.Context, in *cd.ListDeploymentTargetsInput) (*cd.ListDeploymentTargetsOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.ListDeploymentTargets(ctx, in)
	}
	return s.Deployments.ListDeploymentTargets(ctx, in)
}

// BatchGetDeploymentTargets delegates to the deployment runner.
func (s *Server) BatchGetDeploymentTargets(ctx context.Context, in *cd.BatchGetDeploymentTargetsInput) (*cd.BatchGetDeploymentTargetsOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.BatchGetDeploymentTargets(ctx, in)
	}
	return s.Deployments.BatchGetDeploymentTargets(ctx, in)
}

// GetDeploymentTarget delegates to the deployment runner.
func (s *Server) GetDeploymentTarget(ctx context.Context, in *cd.GetDeploymentTargetInput) (*cd.GetDeploymentTargetOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.GetDeploymentTarget(ctx, in)
	}
	return s.Deployments.GetDeploymentTarget(ctx, in)
}

// ListDeploymentInstances delegates to the deployment runner.
func (s *Server) ListDeploymentInstances(ctx context.Context, in *cd.ListDeploymentInstancesInput) (*cd.ListDeploymentInstancesOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.ListDeploymentInstances(ctx, in)
	}
	return s.Deployments.ListDeploymentInstances(ctx, in)
}

// BatchGetDeploymentInstances delegates to the deployment runner.
func (s *Server) BatchGetDeploymentInstances(ctx context.Context, in *cd.BatchGetDeploymentInstancesInput) (*cd.BatchGetDeploymentInstancesOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.BatchGetDeploymentInstances(ctx, in)
	}
	return s.Deployments.BatchGetDeploymentInstances(ctx, in)
}

// GetDeploymentInstance delegates to the deployment runner.
func (s *Server) GetDeploymentInstance(ctx context.Context, in *cd.GetDeploymentInstanceInput) (*cd.GetDeploymentInstanceOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.GetDeploymentInstance(ctx, in)
	}
	return s.Deployments.GetDeploymentInstance(ctx, in)
}

// PutLifecycleEventHookExecutionStatus delegates to the deployment runner.
func (s *Server) PutLifecycleEventHookExecutionStatus(ctx context.Context, in *cd.PutLifecycleEventHookExecutionStatusInput) (*cd.PutLifecycleEventHookExecutionStatusOutput, error) {
	if s.Deployments == nil {
		return s.Unimplemented.PutLifecycleEventHookExecutionStatus(ctx, in)
	}
	return s.Deployments.PutLifecycleEventHookExecutionStatus(ctx, in)
}
