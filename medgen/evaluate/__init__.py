"""The evaluate stage and what follows it: corpus loading and shared indexes (`corpus`), the figure families
(`figures`) over pure metrics (`metrics/`), the release gate (`gate`), REPORT.md and report.html (`report`), the
canary probe stage (`canaries`), the stage itself (`stage`) and the release (`release`).
"""
