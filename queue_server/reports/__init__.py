"""Daily and monthly reports (月報) from the visit archive: figures (pure), rendering (xlsx, CSV), loading."""
