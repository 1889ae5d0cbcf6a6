"""The lobby call display (呼出表示盤): a page on the public API, with chime and voice."""
