cwlVersion: v1.2
class: CommandLineTool
label: Count persons by sex with sqlite3 (CommandLineTool)
doc: |
  Counts the persons of an OMOP-like SQLite dataset by sex with the sqlite3 command of a small container
  image. The TRE gives the dataset; the container has no network and a read-only file system.
requirements:
  DockerRequirement:
    dockerPull: localhost/five-safes/sqlite-counts:1
baseCommand: [sqlite3, -readonly, -csv, -header]
inputs:
  dataset:
    type: File
    inputBinding:
      position: 1
  born_from:
    type: int
arguments:
  - position: 2
    valueFrom: >-
      SELECT CASE gender_concept_id WHEN 8507 THEN 'male' WHEN 8532 THEN 'female' ELSE 'other' END AS sex,
      COUNT(*) AS persons FROM person WHERE year_of_birth >= $(inputs.born_from) GROUP BY 1 ORDER BY 1;
stdout: sex_counts.csv
outputs:
  sex_counts:
    type: File
    outputBinding:
      glob: sex_counts.csv
