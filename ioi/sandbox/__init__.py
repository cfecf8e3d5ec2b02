"""Local, faithful simulators of ORCID and DSpace for tests and the demo.

Production code never imports this package.
"""
