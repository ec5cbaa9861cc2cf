"""Writers of records (handlers/records/document.py): Markdown, DOCX, XLSX and CSV."""
