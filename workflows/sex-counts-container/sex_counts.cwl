cwlVersion: v1.2
class: Workflow
label: Persons by sex, counted inside an approved container
doc: |
  Counts the persons of an OMOP-like SQLite dataset by sex. Its one step runs sqlite3 in a container image
  the TRE approved by digest; the TRE gives the dataset read-only and the container has no network.
inputs:
  dataset:
    type: File
    doc: OMOP-like SQLite dataset, provided by the TRE
  born_from:
    type: int
    default: 1900
    doc: Count only persons born in this year or later
outputs:
  sex_counts:
    type: File
    outputSource: count/sex_counts
steps:
  count:
    run: count_by_sex.cwl
    in:
      dataset: dataset
      born_from: born_from
    out: [sex_counts]
