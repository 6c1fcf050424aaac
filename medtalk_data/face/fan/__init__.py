"""The fan backend: face-alignment's FAN 68-point landmarks on the face MediaPipe tracks."""
