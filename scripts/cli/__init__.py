"""`gopro-s3-sync`, the project's command-line tool (Click): see app.py; run it as `python -m scripts.cli`."""
