"""Analysis: text extraction and the language pipeline that annotates an item's text."""
