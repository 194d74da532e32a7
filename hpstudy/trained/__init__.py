"""What a user does with a study's trained models: load them (`models`: `load_best`, a trial's model), evaluate them
on the test split (`evaluate`), export one for plain Keras (`export`), classify image files (`predict`). Above the
engine (a trial's model is rebuilt by its hypermodel); imports Keras, so the API imports it lazily."""
