"""The evaluation harness: datasets, strategies, a resumable runner and reports.

`flux eval` (see `flux_agent.cli.eval`) is the command; these modules are its parts:
`datasets` (load items), `strategies` (cot, self-consistency, best-of-n,
budget-forcing, flux), `runner` (run and score, appending to a results file),
`report` (Markdown and a plot from a run directory), `records` (the file formats).
"""
