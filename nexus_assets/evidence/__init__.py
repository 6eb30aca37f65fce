"""Signed release evidence: `check` is the offline verifier of the evidence pack. It imports
nothing of nexus-assets (the pack ships it verbatim as verify.py); attest writes the evidence,
package ships it, deploy and `nexus-agent verify` check it."""
