"""Growing the template library from solved problems: extract, gate, merge, log.

`extract.py` asks an LLM for template candidates from one solved problem;
`sources.py` reads solved problems from a dataset file or the run store;
`grow.py` runs the whole pass (resumable) and the review workflow.
The gate and the writing live in `flux_agent.templates.writer`.
"""
