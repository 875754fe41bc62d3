"""Release: manifest -> package -> deployment -> mirror, built once by one factory for both model lines."""
