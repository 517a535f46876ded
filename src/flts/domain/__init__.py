"""Pure data: wire messages, stage configs and the config hash. No I/O."""
