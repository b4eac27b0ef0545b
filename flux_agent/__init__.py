"""flux-agent: hierarchical, template-guided math reasoning.

A navigator LLM plans a trajectory over a library of thought templates, a
solver LLM carries out each step, and a LangGraph loop checks the steps with
exact arithmetic and revises the plan when a step fails.
"""

__version__ = "0.1.0"
