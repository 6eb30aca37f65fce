"""What the evidence file server serves of a working copy, and where (automation/evidence_server.py
serves it; core/metadata.py links to it). Kept free of Dagster: the server starts without it."""

EVIDENCE_FOLDERS = ("reports", "artifacts", "releases")  # nothing else of WORKDIR has a link
DEFAULT_EVIDENCE_PORT = 3001
DEFAULT_EVIDENCE_URL = f"http://127.0.0.1:{DEFAULT_EVIDENCE_PORT}"
