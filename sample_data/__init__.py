"""The sample fleet as wire JSON; read it with :func:`patchframe.sample.sample_fleet`."""
