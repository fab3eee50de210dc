"""FaceTrack-MM video + face-track processing: decoding, face detection/tracking, crops, the measured expression
timeline (expressions, expression_events, expression_caption, expression_report), and the AutoProcessor."""
