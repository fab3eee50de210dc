"""FaceTrack-MM video + face-track processing: decoding, face detection/tracking, crops, and the AutoProcessor."""
