"""Developer and test tools that never ship in the Lambda package (the GoPro cloud simulator lives here)."""
