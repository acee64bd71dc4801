"""The reference TRE agent of the Five Safes Portal.

The agent runs inside a Trusted Research Environment and talks to the portal only over HTTP. This
package holds its execution layer: configuration (:mod:`agent.config`), the process sandbox
(:mod:`agent.sandbox`), the executors (:mod:`agent.executors`), the result crate writer
(:mod:`agent.results`) and synthetic OMOP-like datasets for demonstrations (:mod:`agent.synthetic`).

An executor receives a prepared :class:`agent.jobs.Job` (a job directory plus the parameters taken from
the request crate) and the TRE's :class:`agent.config.AgentConfig`, and returns an
:class:`agent.executors.base.ExecutionResult`; :func:`agent.executors.execute` routes a job to the
executor the TRE configured for its approved workflow.
"""

__version__ = "0.1.0"
