"""Jobs: modules with ``run(config, workdir)``, one per config.stage. Only ega_jax/main.py imports them
(a job may run the jobs it is made of: table1 runs ega and the baselines, and those their stage-1
prerequisites); everything they share lives in the library modules below."""
