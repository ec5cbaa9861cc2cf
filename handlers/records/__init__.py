"""The records the regulations require (issue #16): 舆情日志, 专报, 定期通报, 零报告 — computed from
the audit trail, as documents (document.py) that bot/documents/ writes as Markdown, DOCX, XLSX or CSV."""
