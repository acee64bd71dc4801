#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
label: Persons by age band and sex
doc: |
  Counts the persons of an OMOP-like SQLite dataset by ten-year age band and sex and returns the table
  as CSV. The counts are not disclosure-controlled here: the TRE's output checking does that.

requirements:
  NetworkAccess:
    networkAccess: false

inputs:
  dataset:
    type: File
    label: OMOP-like SQLite dataset (provided by the TRE, never by the request)
  reference_year:
    type: int
    default: 2025
    label: Age is computed as reference_year minus year of birth

outputs:
  age_sex_table:
    type: File
    label: Persons by age band and sex (CSV)
    outputSource: count/table

steps:
  count:
    run: count_by_age_sex.cwl
    in:
      dataset: dataset
      reference_year: reference_year
    out: [table]
