"""HTTP plumbing shared by every router: problem details, dependencies, middleware."""
