"""Operations: nightly retention (`maintenance`) and the environment report (`infra_report`)."""
