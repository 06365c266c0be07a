"""Understanding a mention: which brand it names, in which language, about what
(topics) and where (places) — decided once at ingest by one matcher of the domain."""
