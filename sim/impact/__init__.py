"""Impact estimation from a staggered rollout: naive before/after, two-way fixed effects and Callaway &
Sant'Anna group-time ATTs, compared with the simulator's known counterfactual effect (docs/rollout.md)."""
