"""Pages for people: building overview, resource and dataset pages, SPARQL editor, policies, audit.

Every page reads through the enforcement point (node.enforcement) as the caller, renders with
node.html, and loads scripts and styles from this node's own /static/ only.
"""
