"""Videos on disk.

mp4 reading and writing (:mod:`~aad_bench.video.io`) and video sets with an index (:mod:`~aad_bench.video.sets`).
"""
