"""Provider credentials: where they are kept, and how one token refresh serves every concurrent worker."""
