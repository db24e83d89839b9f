"""Application services: use cases over reporting_forms and storage (no aiogram, no bot imports)."""
