"""Plain services the Lambda handlers adapt: each takes its collaborators in its constructor, so tests can too."""
