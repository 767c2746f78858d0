"""Test-only fakes: a minimal helpdesk adapter (`testdesk`) and fake product HTTP servers."""
