"""The generate stage: the plan of requests (`plan`), driving a backend with validation and retries (`driver`),
the crash-safe journal (`journal`), the corpus files (`corpus`), the generation card (`card`), merging shards
(`shards`) and the stage itself (`stage`).
"""
